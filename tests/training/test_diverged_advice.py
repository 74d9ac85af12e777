"""A diverged run: train, predict, evaluate, a resume and compare advise what works (a new run with --no-amp,
a lower --lr or a gradient clip), never a --resume that diverges again (issue 31, R2)."""

import os

import pytest
from synth import tiny_store

import spectro
from spectro.cli.main import main
from spectro.comparison.jobs import Job, train_job
from spectro.errors import SpectroError
from spectro.training.health import divergence_advice


@pytest.fixture(scope="module")
def diverged(tmp_path_factory, one_thread):
    """A cnn trained under bf16 autocast with an absurd learning rate: its loss is NaN in the first epoch."""
    base = tmp_path_factory.mktemp("diverged")
    store = tiny_store(base)
    run = str(base / "run")
    with pytest.raises(SpectroError) as err:
        spectro.train(store, out=run, model="cnn", epochs=2, batch_size=8, lr=1e12, amp=True, progress=False)
    return store, run, str(err.value)


def _advises_a_new_run(text: str) -> None:
    assert "--resume" not in text.replace("resuming it would diverge again", "")
    assert "--no-amp (it trained under bf16" in text
    assert "a lower --lr (it had 1e+12)" in text and "--grad-clip 1" in text


def test_train_says_the_cause_and_what_works(diverged):
    _store, run, err = diverged
    assert "training diverged" in err
    _advises_a_new_run(err)
    assert os.path.isfile(os.path.join(run, "run.json"))


@pytest.mark.parametrize("command", [["predict", "RUN", "FILE"], ["evaluate", "RUN"], ["train", "--resume", "RUN"]])
def test_predict_evaluate_and_resume_advise_a_new_run(diverged, capsys, command):
    store, run, _ = diverged
    wav = os.path.join(os.path.dirname(store), "src", "low", "low_0.wav")
    args = [{"RUN": run, "FILE": wav}.get(a, a) for a in command]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "diverged" in err
    _advises_a_new_run(err)


def test_the_advice_follows_the_cause():
    full = divergence_advice({"lr": 0.1, "grad_clip": 5.0}, precision="fp16")
    assert "--no-amp (it trained under fp16" in full and "smaller --grad-clip (it had 5)" in full
    fp32 = divergence_advice({"optimizer": "sgd", "lr": None, "amp": False}, precision="fp32")
    assert "--no-amp" not in fp32 and "a lower --lr (it had 0.05)" in fp32
    assert "--no-amp if it trained under mixed precision" in divergence_advice({}, precision=None)


def test_compare_fails_a_diverged_run_with_the_same_advice(diverged):
    store, run, _ = diverged
    outcome = train_job(Job("cnn", 5, run, store, {}))
    assert outcome["status"] == "failed" and outcome["error"].startswith("diverged earlier:")
    _advises_a_new_run(outcome["error"])
