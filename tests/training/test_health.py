"""The run warnings: still improving at the last epoch, training accuracy at chance."""

from synth import tiny_store

from spectro.training.health import IMPROVING_BY, run_warnings, unseen_classes
from spectro.training.train import train


def _rows(val=None, train=None):
    n = len(val or train)
    return [{"epoch": i + 1, "train_accuracy": (train or [0.9] * n)[i],
             "val_macro_f1": None if val is None else val[i]} for i in range(n)]


def codes(rows, **kw):
    return [w["code"] for w in run_warnings(rows, majority_rate=kw.pop("majority", 0.1), **kw)]


def test_classes_only_in_the_test_examples_are_named():
    assert unseen_classes([0, 1, 1], [0, 1], ["a", "b", "c"]) == []
    (w,) = unseen_classes([0, 0], [0, 1, 2, 2], ["a", "b", "c"])
    assert w["code"] == "unseen_classes" and "2 classes that no training example has (b, c)" in w["text"]


def test_a_curve_that_still_rises_at_the_end_is_flagged():
    assert codes(_rows(val=[0.20, 0.30, 0.43])) == ["still_improving"]  # the 3-epoch CNN
    rising = [0.5 + 0.01 * e for e in range(20)]
    assert codes(_rows(val=rising)) == ["still_improving"]  # last 4 of 20 epochs: .69 vs .65 before


def test_a_flat_or_noisy_curve_is_not():
    assert codes(_rows(val=[0.5, 0.8, 0.9, 0.9, 0.91, 0.9, 0.9, 0.9, 0.9, 0.91])) == []
    # within 2 points of the best before the last fifth: noise, not progress
    assert codes(_rows(val=[0.5, 0.9, 0.88, 0.9, 0.9 + IMPROVING_BY / 2])) == []


def test_without_validation_the_training_accuracy_is_judged():
    assert codes(_rows(train=[0.3, 0.5, 0.7, 0.9, 0.95])) == ["still_improving"]
    assert codes(_rows(train=[0.3, 0.9, 0.98, 0.99, 0.99])) == []


def test_at_chance_and_single_epoch():
    assert codes(_rows(val=[0.1, 0.1, 0.1, 0.1, 0.1], train=[0.12] * 5), majority=0.1) == ["at_chance"]
    assert codes(_rows(train=[0.7])) == ["still_improving"]  # one epoch: no curve to judge
    assert codes(_rows(train=[0.7]), curve=False) == []  # a classifier fitted once has no curve


def test_train_writes_the_warnings_and_says_them(tmp_path, capsys, one_thread):
    store = tiny_store(tmp_path)
    run = train(store, "cnn", str(tmp_path / "r"), epochs=1, batch_size=8, device="cpu", progress=False)
    assert [w["code"] for w in run.info["warnings"]] == ["still_improving"]
    assert "single epoch" in capsys.readouterr().err
    svm = train(store, "svm", str(tmp_path / "s"), progress=False)
    assert svm.info["warnings"] == []


def test_the_epoch_line_shows_validation_only_when_there_is_one():
    from spectro.training.recorder import epoch_line

    row = {"epoch": 3, "train_loss": 0.5, "train_accuracy": 0.9, "val_loss": None, "val_accuracy": None,
           "val_macro_f1": None, "lr": 1e-3, "seconds": 2.0, "samples_per_s": 100.0}
    assert epoch_line(row, 10, False) == "epoch 3/10  loss 0.5000  acc 0.9000  lr 1.00e-03  2.0 s  100/s"
    held = {**row, "val_loss": 0.7, "val_accuracy": 0.8, "val_macro_f1": 0.75}
    assert "val loss 0.7000  val acc 0.8000  val F1 0.7500  lr" in epoch_line(held, 10, True)
