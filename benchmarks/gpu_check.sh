#!/usr/bin/env bash
# The one script for a lent GPU (issue 29): everything the card has to show, in order, into one log.
#
#   bash benchmarks/gpu_check.sh            # writes benchmarks/results/gpu-check-DATE.log
#
# 1. nvidia-smi -L
# 2. python -m pytest -m gpu -q             (tests/gpu: bf16, fp16 + GradScaler, channels_last, resident data,
#                                            exact resume, preprocess on CUDA, torchrun + NCCL, out of memory)
# 3. bench_train.py --practitioner --device cuda at 1 x 64 x 101, batch 256, resnet18 and resnet34:
#    the practitioner's loop against spectro train as shipped, samples/s, their ratio, GPU utilisation
# 4. bench_preprocess.py: preprocess --device cuda against the CPU path on the same corpus (clips/s)
# 5. the README's main job, timed
#
# It installs what it needs from the project's own files (a venv under $TMPDIR unless spectro is importable),
# gives each step a time limit and stops itself before BUDGET seconds (default 460: under 8 minutes).
# Without a GPU it stops at once with one line and exit code 2.
set -uo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_check: no CUDA GPU here (nvidia-smi finds none); run this on a machine with one" >&2
    exit 2
fi
BUDGET=${BUDGET:-460}
mkdir -p benchmarks/results
log="benchmarks/results/gpu-check-$(date +%Y-%m-%d).log"
exec > >(tee "$log") 2>&1
echo "gpu_check $(date -Is) at $(git rev-parse --short HEAD 2>/dev/null || echo '?'); budget ${BUDGET}s"

if ! python3 -c "import spectro, torch, pytest, torchvision" >/dev/null 2>&1; then
    venv="${TMPDIR:-/tmp}/spectro-gpu-venv"
    python3 -m venv "$venv" && . "$venv/bin/activate" && python -m pip install --quiet '.[dev]' \
        || { echo "gpu_check: installing the project failed"; exit 1; }
fi
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 2)" \
    || { echo "gpu_check: torch sees no CUDA device (a CPU-only torch build?)"; exit 2; }

step() {  # step LIMIT TITLE COMMAND...: run with a time limit cut to what the budget has left
    local limit=$1 title=$2; shift 2
    local left=$((BUDGET - SECONDS))
    if [ "$left" -lt 20 ]; then echo "== $title: skipped, ${left}s of the budget left"; return; fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo; echo "== $title (limit ${limit}s)"
    local t0=$SECONDS
    timeout --signal=INT --kill-after=10 "$limit" "$@"
    echo "== $title: exit $?, $((SECONDS - t0)) s"
}

step 15 "nvidia-smi -L" nvidia-smi -L
step 15 "spectro doctor" spectro doctor
step 200 "pytest -m gpu" python -m pytest -m gpu -q -rs tests
step 120 "training: practitioner vs spectro train" python benchmarks/bench_train.py --practitioner --device cuda \
    --batch-size 256 --shape 1x64x101 --models resnet18,resnet34 --steps 20 --rounds 3
step 60 "preprocess: cuda vs cpu" python benchmarks/bench_preprocess.py --device cuda --clips 2000 --repeats 2
main_job=$(awk '/^```/{n++; next} n==1' README.md | head -n 1 | sed 's/^pip install [^&]*&& //')
work=$(mktemp -d)
step 150 "README main job" bash -c "cp -r data '$work/' && cd '$work' && /usr/bin/time -f 'main job wall %e s' bash -euo pipefail -c \"$main_job\""
rm -rf "$work"
echo; echo "gpu_check done in ${SECONDS}s; log: $log"
