"""train: the run layout, honest splits, seeds, exact resume, Ctrl-C, NaN, bad input, SVM, CV, DDP."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from synth import REPO, class_folders, tiny_store
from synth import TINY_CFG as CFG

import spectro.training.classifier as classifier_module
import spectro.training.loop as trainer_module
from spectro import FeatureConfig, preprocess
from spectro.cli.main import build_parser, main
from spectro.config import TrainConfig
from spectro.dataset.feed import DeviceRows, StoreImages, norm_stats
from spectro.errors import SpectroError, TrainingInterrupted
from spectro.models import build
from spectro.signals.store import open_store
from spectro.training.cv import cross_validate
from spectro.training.evaluate import evaluate
from spectro.training.loop import lr_factor
from spectro.training.run import load_run
from spectro.training.train import train
from spectro.utils.device import Precision, choose_precision, select_device

FAST = dict(batch_size=4, device="cpu", progress=False)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """3 classes x 12 files, 5 folds: 22 train, 7 validation, 7 test images of 1 x 32 x 32."""
    return tiny_store(tmp_path_factory.mktemp("train"))


def run_group(cmd, timeout, **kw):
    """subprocess.run in a session of its own, killed whole (torchrun's workers too) on timeout."""
    proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def metric_rows(run_dir, timing=False):
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    return rows if timing else [{k: v for k, v in r.items() if k not in ("seconds", "samples_per_s")} for r in rows]


def last_weights(run_dir):
    return torch.load(os.path.join(run_dir, "checkpoints", "last.pt"), weights_only=True)["model"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# --- the run directory ----------------------------------------------------------------

def test_cli_train_writes_the_whole_run(store, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--store", store, "--model", "cnn", "--out", str(out), "--epochs", "2",
                 "--batch-size", "4", "--device", "cpu", "--quiet", "--option", "dropout=0.1"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"spectro: run {out} (done") and "test accuracy" in line
    assert sorted(os.listdir(out)) == ["checkpoints", "curves.png", "eval", "feature_config.json", "labels.json",
                                       "metrics.csv", "model", "norm.json", "run.json", "split.csv",
                                       "train_config.json"]
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "done" and info["epochs_done"] == 2 and info["kind"] == "net"
    assert {"torch", "numpy", "python", "spectro"} <= set(info["versions"])
    assert 0 <= info["test"]["macro_f1"] <= 1
    st = open_store(store)
    assert FeatureConfig.from_dict(json.loads((out / "feature_config.json").read_text())) == st.config
    assert json.loads((out / "labels.json").read_text()) == st.labels
    cfg = TrainConfig.from_dict(json.loads((out / "train_config.json").read_text()))
    assert (cfg.model, cfg.epochs, cfg.test_fold, cfg.val_fold) == ("cnn", 2, 5, None)  # validation: a hold-out
    assert cfg.model_options == {"dropout": 0.1} and cfg.lr is None  # unset options keep TrainConfig defaults
    rows = metric_rows(out, timing=True)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert list(rows[0]) == ["epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                             "val_macro_f1", "seconds", "samples_per_s"]
    assert all(float(r["samples_per_s"]) > 0 for r in rows)
    run = load_run(str(out))
    assert run.classifier.kind == "net" and run.labels == st.labels
    assert run.predict_proba(st.features[:5]).shape == (5, 3)


def test_the_test_fold_touches_nothing_but_the_final_score(store, tmp_path):
    run = train(store, "cnn", str(tmp_path / "run"), epochs=1, val_fold=4, **FAST)  # a whole validation fold
    st = open_store(store)
    with open(os.path.join(run.path, "split.csv"), newline="") as f:
        split = list(csv.DictReader(f))
    roles = {r["id"]: r["role"] for r in split}
    assert len(split) == len(st) and set(roles.values()) == {"train", "val", "test"}
    for i, fold in zip(st.ids, st.folds):
        assert roles[i] == {5: "test", 4: "val"}.get(int(fold), "train")
    # Normalisation comes from the training rows alone.
    train_rows = np.flatnonzero(st.folds <= 3)
    mean, std = norm_stats(st.features, train_rows)
    np.testing.assert_array_equal(run.mean, mean)
    np.testing.assert_array_equal(run.std, std)
    assert not np.array_equal(norm_stats(st.features, np.arange(len(st)))[0], mean)


def test_trainer_validates_on_the_validation_fold_only(store, tmp_path, monkeypatch):
    seen = []
    validate = trainer_module.Trainer.validate

    def spy(self):
        seen.append(set(self.val_data.rows.tolist()))
        return validate(self)

    monkeypatch.setattr(trainer_module.Trainer, "validate", spy)
    train(store, "cnn", str(tmp_path / "run"), epochs=2, test_fold=2, val_fold=1, **FAST)
    st = open_store(store)
    assert seen == [set(np.flatnonzero(st.folds == 1).tolist())] * 2  # the validation fold asked for


# --- repeatability and resume ---------------------------------------------------------

def test_same_seed_same_metrics_on_cpu(store, tmp_path):
    kw = dict(epochs=2, specaugment=True, mixup=0.2, time_shift=0.1, gain_eq=6.0, **FAST)
    a = train(store, "resnet20", str(tmp_path / "a"), seed=7, **kw)
    b = train(store, "resnet20", str(tmp_path / "b"), seed=7, **kw)
    c = train(store, "resnet20", str(tmp_path / "c"), seed=8, **kw)
    assert metric_rows(a.path) == metric_rows(b.path)
    assert_same_weights(last_weights(a.path), last_weights(b.path))
    assert metric_rows(a.path) != metric_rows(c.path)  # the seed matters, so the test can fail


def test_every_augmentation_is_off_at_evaluation(store, tmp_path):
    run = train(store, "resnet20", str(tmp_path / "run"), epochs=1, specaugment=True, mixup=0.2, time_shift=0.1,
                gain_eq=6.0, **FAST)
    X = open_store(store).features[:]
    torch.manual_seed(0)
    a = run.predict_proba(X)
    torch.manual_seed(1)
    b = run.predict_proba(X)
    # Masks, shifts or mixing at evaluation would differ between the two seeds.
    assert np.array_equal(a, b)
    module = run.classifier.module_.eval()
    with torch.no_grad():  # the plain forward pass of the trained network
        plain = torch.softmax(module(torch.from_numpy(run.normalise(X))).double(), dim=1).numpy()
    np.testing.assert_allclose(a, plain, atol=1e-2)  # loose: predict may run in bf16 on a CPU with AMX


@pytest.fixture(scope="module")
def reference(store, tmp_path_factory):
    """4 uninterrupted epochs with every augmentation on: what a resumed run must reproduce."""
    out = tmp_path_factory.mktemp("ref") / "run"
    return train(store, "resnet20", str(out), **RESUME_KW).path


RESUME_KW = dict(epochs=4, specaugment=True, mixup=0.2, time_shift=0.1, gain_eq=6.0, optimizer="sgd",
                 schedule="cosine", **FAST)


def test_resume_after_two_epochs_equals_an_uninterrupted_run(store, reference, tmp_path):
    out = str(tmp_path / "run")
    run = train(store, "resnet20", out, on_epoch=lambda row, model: row["epoch"] == 2, **RESUME_KW)
    assert run.status == "interrupted" and len(metric_rows(out)) == 2
    resumed = train(resume=out, progress=False)
    assert resumed.status == "done" and resumed.info["epochs_done"] == 4
    assert metric_rows(out) == metric_rows(reference)
    assert_same_weights(last_weights(out), last_weights(reference))
    assert resumed.test_metrics == load_run(reference).test_metrics


def test_ctrl_c_mid_epoch_saves_a_checkpoint_that_resumes_exactly(store, reference, tmp_path, monkeypatch):
    out = str(tmp_path / "run")
    calls = {"n": 0}

    def interrupt_on_tenth_batch(getitem):
        def batch(self, positions):
            calls["n"] += 1
            if calls["n"] == 10:  # 5 train + 2 validation batches per epoch: epoch 2, batch 3
                os.kill(os.getpid(), signal.SIGINT)
            return getitem(self, positions)
        return batch

    # Batches come from the memory map or, when the rows fit in memory (here), from DeviceRows: count both.
    for source in (StoreImages, DeviceRows):
        monkeypatch.setattr(source, "__getitem__", interrupt_on_tenth_batch(source.__getitem__))
    monkeypatch.setattr(trainer_module, "CHECK_EVERY", 1)
    with pytest.raises(TrainingInterrupted, match=f"stopped at epoch 1, batch 3; continue with: spectro train "
                                                  f"--resume {out}"):
        train(store, "resnet20", out, **RESUME_KW)
    monkeypatch.undo()
    info = json.loads(open(os.path.join(out, "run.json")).read())
    assert info["status"] == "interrupted" and info["stopped_at"] == "epoch 1, batch 3"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    train(resume=out, progress=False)
    assert metric_rows(out) == metric_rows(reference)
    assert_same_weights(last_weights(out), last_weights(reference))


@pytest.mark.slow
def test_cli_ctrl_c_exits_130_and_the_run_resumes(store, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "spectro", "train", "--store", store, "--model", "resnet20", "--out", str(out),
           "--epochs", "6", "--batch-size", "2", "--device", "cpu", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "metrics.csv").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert f"continue with: spectro train --resume {out}" in err
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert [r["epoch"] for r in metric_rows(out)] == [str(e) for e in range(1, 7)]


# --- a loss that is not finite ----------------------------------------------------------

def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(store, tmp_path):
    def poison(row, model):
        if row["epoch"] == 1:
            with torch.no_grad():
                for p in model.parameters():
                    p.fill_(float("nan"))

    out = str(tmp_path / "run")
    with pytest.raises(SpectroError, match=r"training diverged: the training loss stopped being finite .* in "
                                           r"epoch 2.*last good checkpoint \(epoch 1\) is kept"):
        train(store, "cnn", out, epochs=3, on_epoch=poison, **FAST)
    info = json.loads(open(os.path.join(out, "run.json")).read())
    assert info["status"] == "diverged" and info["epochs_done"] == 1
    assert all(torch.isfinite(v).all() for v in last_weights(out).values() if v.is_floating_point())
    assert np.isfinite(load_run(out).predict_proba(open_store(store).features[:4])).all()


# --- bad input: one line, non-zero exit ---------------------------------------------------

@pytest.fixture(scope="module")
def one_class_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("one")
    preprocess(class_folders(root / "src", classes=("only",), per_class=5, sr=8000), str(root / "store"),
               config=CFG, workers=0, progress=False)
    return str(root / "store")


@pytest.mark.parametrize("args, message", [
    (["--model", "resnet19"], "spectro: error: unknown model 'resnet19'; valid models: "),
    (["--model", "cnn", "--test-fold", "9"], "spectro: error: test fold 9 does not exist; the store has folds "
                                            "[1, 2, 3, 4, 5]"),
    (["--model", "cnn", "--batch-size", "64"], "spectro: error: batch size 64 is larger than the 29 training "
                                               "examples; lower --batch-size"),
    (["--model", "cnn", "--epochs", "0"], "spectro: error: invalid training setting: epochs must be at least 1"),
    (["--model", "cnn", "--device", "cuda"] if not torch.cuda.is_available() else ["--model", "cnn", "--device", "tpu"],
     "spectro: error: "),
])
def test_bad_arguments_give_one_line(store, tmp_path, capsys, args, message):
    assert main(["train", "--store", store, "--out", str(tmp_path / "run"), "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


def test_gain_eq_needs_decibel_images(tmp_path, capsys):
    root = tmp_path / "lin"
    preprocess(class_folders(root / "src", per_class=4, sr=8000), str(root / "store"),
               config=CFG.replace(db=False), workers=0, progress=False)
    assert main(["train", "--store", str(root / "store"), "--model", "cnn", "--gain-eq", "--quiet",
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "--gain-eq adds decibels, but the images of" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_single_class_store(one_class_store, tmp_path, capsys):
    assert main(["train", "--store", one_class_store, "--model", "cnn", "--out", str(tmp_path / "r")]) == 2
    assert "has a single class (only): a classifier needs two or more" in capsys.readouterr().err


def test_an_existing_run_is_not_overwritten(store, tmp_path):
    run = train(store, "cnn", str(tmp_path / "run"), epochs=1, **FAST)
    with pytest.raises(SpectroError, match="already holds a run; continue it with --resume"):
        train(store, "cnn", run.path, epochs=1, **FAST)


def test_resume_refuses_another_feature_config_or_other_settings(store, tmp_path):
    out = str(tmp_path / "run")
    train(store, "cnn", out, epochs=3, on_epoch=lambda row, m: True, **FAST)
    root = tmp_path / "other"
    preprocess(class_folders(root / "src", per_class=6, sr=8000), str(root / "store"),
               config=CFG.replace(hop_length=100), workers=0, progress=False)
    with pytest.raises(SpectroError, match="cannot resume .* built with another FeatureConfig"):
        train(str(root / "store"), resume=out, progress=False)
    with pytest.raises(SpectroError, match="lr=0.5 differs from its None"):
        train(resume=out, lr=0.5, progress=False)
    assert train(resume=out, device="cpu", progress=False).status == "done"  # where it runs may change


# --- precision and devices (the CUDA logic, tested without a GPU) ---------------------------

def test_precision_policy():
    bf16, fp16 = torch.bfloat16, torch.float16
    assert choose_precision("cuda", cuda_bf16=True) == Precision(bf16, False, True)
    assert choose_precision("cuda", cuda_bf16=False) == Precision(fp16, True, True)  # old GPU: loss scaling
    assert choose_precision("cuda", False, cuda_bf16=True) == Precision(None, False, True)
    assert choose_precision("cpu", cpu_fast_bf16=True) == Precision(bf16, False, True)  # AMX
    assert choose_precision("cpu", cpu_fast_bf16=False) == Precision(None, False, True)  # measured slower
    assert choose_precision("cpu", True, cpu_fast_bf16=False).dtype == bf16  # asked for
    assert choose_precision("cpu", None, False, cpu_fast_bf16=True) == Precision(bf16, False, False)
    assert choose_precision("mps").dtype == bf16


def test_device_selection(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto").type in ("cpu", "mps")
    with pytest.raises(SpectroError, match="no CUDA device"):
        select_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto", local_rank=1) == torch.device("cuda", 1)  # one GPU per torchrun process
    assert select_device("cuda:0") == torch.device("cuda", 0)


def test_fp16_with_grad_scaler_trains_and_resumes(store, tmp_path, monkeypatch):
    # The path of GPUs without bf16, run on the CPU: autocast fp16 + GradScaler, scaler state in checkpoints.
    monkeypatch.setattr(classifier_module, "choose_precision", lambda *a, **k: Precision(torch.float16, True, True))
    out = str(tmp_path / "run")
    train(store, "cnn", out, epochs=2, on_epoch=lambda row, m: True, model_options={"widths": [8, 16]}, **FAST)
    ckpt = torch.load(os.path.join(out, "checkpoints", "last.pt"), weights_only=True)
    assert ckpt["trainer"]["scaler"]["scale"] > 0
    run = train(resume=out, progress=False)
    assert run.status == "done" and all(np.isfinite(float(r["train_loss"])) for r in metric_rows(out))


def test_lr_schedule():
    f = [lr_factor(s, total=10, warmup=2, schedule="cosine") for s in range(10)]
    assert f[:2] == [0.5, 1.0] and f[2] == 1.0 and f[9] < 0.05 and f == sorted(f[:2]) + sorted(f[2:], reverse=True)
    g = [lr_factor(s, total=8, warmup=0, schedule="step") for s in range(8)]
    assert g == pytest.approx([1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01])


def test_train_config_round_trip_and_validation():
    cfg = TrainConfig(model="cnn", lr=0.01, model_options={"dropout": 0.2})
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert (TrainConfig(optimizer="sgd").learning_rate, TrainConfig().learning_rate) == (0.05, 1e-3)
    with pytest.raises(SpectroError, match="unknown training settings"):
        TrainConfig.from_dict({"epochz": 3})
    with pytest.raises(SpectroError, match="schedule must be one of"):
        TrainConfig(schedule="linear")
    with pytest.raises(SpectroError, match=r"unknown training setting\(s\): \['epochz'\]"):
        train("unused", "cnn", epochz=3)


def test_cv_refuses_fixed_folds(store, tmp_path, capsys):
    assert main(["train", "--cv", "--test-fold", "2", "--store", store, "--model", "cnn",
                 "--out", str(tmp_path / "cv")]) == 2
    assert "--cv chooses the test and validation folds itself" in capsys.readouterr().err


def test_cli_options_default_to_none():
    args = build_parser().parse_args(["train", "--store", "s", "--no-amp", "--time-shift", "--specaugment"])
    assert args.epochs is None and args.lr is None and args.seed is None and args.balance is None
    assert args.amp is False and args.time_shift == 0.1 and args.specaugment is True


# --- the SVM and the other options through the same command ---------------------------------

def test_svm_trains_through_the_same_command(store, tmp_path, capfd):
    out = tmp_path / "svm"
    assert main(["train", "--store", store, "--model", "svm", "--out", str(out), "--epochs", "5", "--lr", "0.1",
                 "--device", "cpu", "--quiet"]) == 0
    err = capfd.readouterr().err
    assert err.count("note") == 1 and "the svm ignores device, epochs, lr" in err
    assert {"model", "metrics.csv", "norm.json", "split.csv", "run.json", "curves.png", "eval"} <= set(os.listdir(out))
    run = load_run(str(out))
    assert run.classifier.kind == "svm" and run.status == "done" and run.test_metrics["accuracy"] > 0.5
    assert len(metric_rows(str(out))) == 1


def test_early_stopping_keeps_the_best_epoch(store, tmp_path, monkeypatch):
    scores = iter([(0.5, 1.0), (0.7, 0.9), (0.7, 0.95), (0.6, 0.8), (0.9, 0.1), (0.9, 0.1)])  # (macro-F1, loss)

    def scripted(self):
        f1, loss = next(scores)
        return {"loss": loss, "accuracy": f1, "macro_f1": f1}

    monkeypatch.setattr(trainer_module.Trainer, "validate", scripted)
    run = train(store, "cnn", str(tmp_path / "run"), epochs=6, early_stop=2, **FAST)
    # Epoch 2 is best (epoch 3 ties on F1 with a higher loss); epochs 3 and 4 are not better: stop after 4.
    assert run.status == "done" and run.info["epochs_done"] == 4 and run.info["best_epoch"] == 2
    saved = json.loads(open(os.path.join(run.path, "model", "model.json")).read())
    assert len(saved["history"]) == 2  # model/ holds the weights of epoch 2


def test_balance_onecycle_smoothing_clipping(store, tmp_path):
    run = train(store, "cnn", str(tmp_path / "run"), epochs=2, balance=True, schedule="onecycle",
                label_smoothing=0.1, grad_clip=1.0, optimizer="sgd", **FAST)
    lrs = [float(r["lr"]) for r in metric_rows(run.path)]
    assert run.status == "done" and len(lrs) == 2 and all(np.isfinite(lrs))


def test_pretrained_start_is_not_needed_to_resume(store, tmp_path):
    start = tmp_path / "start.pt"
    torch.save(build("resnet20", 3).state_dict(), start)
    out = str(tmp_path / "run")
    train(store, "resnet20", out, epochs=2, pretrained=str(start), on_epoch=lambda row, m: True, **FAST)
    start.unlink()  # the checkpoint carries the weights from here on
    assert train(resume=out, progress=False).status == "done"


def test_net_classifier_fit_runs_this_loop(monkeypatch):
    from spectro.training.classifier import NetClassifier

    calls = []
    real = trainer_module.Trainer.fit
    monkeypatch.setattr(trainer_module.Trainer, "fit", lambda self, *a, **k: calls.append(self.cfg) or real(self, *a, **k))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((24, 1, 16, 16)).astype(np.float32)
    y = np.array(["a", "b"] * 12)
    X[y == "a", 0, :4] += 3  # class a: energy in the low rows
    clf = NetClassifier("cnn", epochs=3, batch_size=8, lr=3e-3, device="cpu").fit(X, y, X_val=X, y_val=y)
    assert len(calls) == 1 and calls[0].epochs == 3 and calls[0].optimizer == "adamw"
    assert [r["epoch"] for r in clf.history_] == [1, 2, 3] and "val_macro_f1" in clf.history_[0]
    assert np.mean(clf.predict(X) == y) > 0.9
    assert clf.fit_result_.stop == "done" and clf.fit_result_.epochs == 3


@pytest.mark.parametrize("model", ["cnn", "svm"])
def test_train_is_one_classifier_fit_for_every_kind(store, tmp_path, monkeypatch, model):
    # spectro.train prepares the job, calls the classifier's own fit once with the run recorder, and finishes.
    from spectro.training.recorder import RunRecorder

    cls = classifier_module.classifier_class(model)
    calls = []
    real = cls.fit
    monkeypatch.setattr(cls, "fit", lambda self, *a, **k: calls.append(k) or real(self, *a, **k))
    run = train(store, model, str(tmp_path / "run"), epochs=2, **FAST)
    assert len(calls) == 1 and [type(c) for c in calls[0]["callbacks"]] == [RunRecorder]
    assert calls[0]["resume"] is None
    with open(tmp_path / "run" / "metrics.csv", newline="") as f:
        epochs = [r["epoch"] for r in csv.DictReader(f)]
    assert epochs == (["1", "2"] if model == "cnn" else ["1"])  # the SVM's one fit is one row
    assert run.status == "done" and run.info["epochs_done"] == len(epochs)
    assert run.classifier.fit_result_.stop == "done"  # the run holds the classifier it fitted


def test_the_run_train_returns_computes_as_the_run_on_disk(store, tmp_path):
    # train hands back the classifier it fitted (no reload of model/); it must predict as load_run's, to the bit.
    run = train(store, "cnn", str(tmp_path / "run"), epochs=2, **FAST)
    images = open_store(store).features[:]
    np.testing.assert_array_equal(run.predict_proba(images), load_run(run.path, device="cpu").predict_proba(images))
    assert run.info == json.loads((tmp_path / "run" / "run.json").read_text())


def test_cross_validation_runs_every_fold(store, tmp_path, capsys):
    out = tmp_path / "cv"
    assert main(["train", "--cv", "--store", store, "--model", "cnn", "--out", str(out), "--epochs", "1",
                 "--batch-size", "4", "--device", "cpu", "--quiet"]) == 0
    table = capsys.readouterr().out
    assert "mean" in table and "std" in table
    with open(out / "cv.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["fold"] for r in rows] == ["1", "2", "3", "4", "5", "mean", "std"]
    accs = np.array([float(r["accuracy"]) for r in rows[:5]])
    assert float(rows[5]["accuracy"]) == pytest.approx(accs.mean())
    assert float(rows[6]["accuracy"]) == pytest.approx(accs.std(ddof=1))
    for k in range(1, 6):
        assert json.loads((out / f"fold{k}" / "run.json").read_text())["folds"]["test"] == k
    again = cross_validate(resume=str(out), progress=False)  # finished folds are kept as they are
    assert again.mean == pytest.approx({k: float(rows[5][k]) for k in again.mean})


# --- many processes ----------------------------------------------------------------------

@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(store, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "spectro",
           "train", "--store", store, "--model", "cnn", "--out", str(out), "--epochs", "2", "--batch-size", "4",
           "--device", "cpu"]
    res = run_group(cmd, timeout=240, env=env)
    assert res.returncode == 0, "\n".join(ln for ln in res.stderr.splitlines() if "it/s" not in ln)[-6000:]
    assert "2 processes" in res.stderr and res.stdout.count("spectro: run ") == 1  # rank 0 alone reports
    assert [r["epoch"] for r in metric_rows(str(out))] == ["1", "2"]  # rank 0 alone writes
    run = load_run(str(out))
    assert run.status == "done" and run.classifier.kind == "net"
    m = evaluate(str(out), "test")
    assert m["n"] == run.info["examples"]["test"]
