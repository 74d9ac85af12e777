"""spectro compare: same split for every model, reuse, resume, failures, bad input, the files it writes."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from synth import DIGITS_CFG_KW

import spectro
from spectro.cli.main import main
from spectro.comparison.jobs import job_config as _config, options_hash as _options_hash
from spectro.config import FeatureConfig
from spectro.metrics.stats import mcnemar_exact
from spectro.plots.comparison import plot_comparison, plot_error_curves

CFG = FeatureConfig(**DIGITS_CFG_KW)  # 1 x 32 x 32
TINY = dict(epochs=1, batch_size=8, progress=False)


def _npz_store(tmp_path, name, *, y, folds) -> str:
    rng = np.random.default_rng(0)
    X = (0.1 * rng.standard_normal((len(y), 4000))).astype(np.float32)
    np.savez(tmp_path / f"{name}.npz", X=X, y=np.asarray(y), folds=np.asarray(folds))
    spectro.preprocess(str(tmp_path / f"{name}.npz"), str(tmp_path / name), config=CFG, progress=False)
    return str(tmp_path / name)


def test_compare_same_examples_table_files_and_reuse(store, tmp_path, one_thread, capsys):
    out = str(tmp_path / "cmp")
    c = spectro.compare(store, ["svm", "cnn"], out, jobs=2, **TINY)  # two processes, one run each
    t = c.table.set_index("model")
    assert list(t.index) == ["svm", "cnn"] and (t["status"] == "ok").all()
    # Both models were scored on the same 20 test examples of one fold, and the numbers are theirs.
    st = spectro.open_store(store)
    test_rows = np.flatnonzero(st.folds == max(st.fold_ids))
    for m in ("svm", "cnn"):
        p = c.predictions[m]
        np.testing.assert_array_equal(p.rows, test_rows)
        np.testing.assert_array_equal(p.y_true, st.y[test_rows])
        assert p.proba.shape == (20, 5) and np.allclose(p.proba.sum(axis=1), 1, atol=1e-4)
        assert t.loc[m, "accuracy"] == pytest.approx(np.mean(p.y_pred == p.y_true))
        run = spectro.load_run(c.runs[m][0], device="cpu")
        assert t.loc[m, "accuracy"] == pytest.approx(run.test_metrics["accuracy"])
        assert t.loc[m, "params"] > 0 and t.loc[m, "infer_ms_b1"] > 0 and t.loc[m, "infer_ms_b64"] > 0
    net = spectro.load_run(c.runs["cnn"][0]).classifier.module_
    # What the network stores to predict: its weights and BatchNorm's running statistics.
    assert t.loc["cnn", "params"] == (sum(p.numel() for p in net.parameters())
                                      + sum(b.numel() for b in net.buffers() if b.is_floating_point()))
    assert t.loc["svm", "params"] == spectro.load_run(c.runs["svm"][0]).classifier.n_parameters()
    # The best one is marked, the other compared with it on the discordant pairs.
    assert c.best in ("svm", "cnn") and t.loc[c.best, "significant"] == "best"
    other = "cnn" if c.best == "svm" else "svm"
    assert t.loc[other, "significant"] in ("yes", "no") and 0 <= t.loc[other, "p_holm"] <= 1
    assert t.loc[other, "diff_vs_best"] == pytest.approx(t.loc[other, "accuracy"] - t.loc[c.best, "accuracy"])
    assert t.loc[other, "diff_low"] <= t.loc[other, "diff_vs_best"] <= t.loc[other, "diff_high"]  # groups known
    for f in ("results.csv", "results.md", "report.md", "comparison.png", "compare.json"):
        assert os.path.getsize(os.path.join(out, f)) > 0
    assert pd.read_csv(os.path.join(out, "results.csv"))["model"].tolist() == ["svm", "cnn"]
    report = Path(out, "report.md").read_text()
    assert c.verdict in report and "not independent" in report
    # One epoch is no curve: the cnn is flagged in the table, the verdict and the report; the svm is not.
    assert t.loc["cnn", "warnings"] == "still_improving" and t.loc["svm", "warnings"] == ""
    assert "cnn: still improving at its last epoch; more epochs may change this ranking" in c.verdict
    assert "svm:" not in c.verdict.partition("Warning:")[2]
    row = {line.split("|")[1].strip(): line for line in c.markdown().splitlines()[2:]}
    assert row["cnn"].rstrip(" |").endswith("still improving ⚠") and row["svm"].rstrip(" |").endswith("-")
    assert "## Warnings" in report and "- cnn: fold 3: trained for a single epoch" in report
    # A second call reuses both finished runs: nothing retrained, same numbers.
    stamps = {m: os.path.getmtime(os.path.join(c.runs[m][0], "run.json")) for m in c.runs}
    again = spectro.compare(store, "svm,cnn", out, timing=False, **TINY)
    assert {m: os.path.getmtime(os.path.join(again.runs[m][0], "run.json")) for m in again.runs} == stamps
    pd.testing.assert_series_equal(again.table["accuracy"], c.table["accuracy"])
    # Other options are another run beside it, not an overwrite.
    more = spectro.compare(store, ["cnn"], out, epochs=2, batch_size=8, progress=False, timing=False)
    assert more.runs["cnn"] != c.runs["cnn"] and os.path.isdir(c.runs["cnn"][0])


def test_compare_resumes_an_interrupted_run(store, tmp_path, one_thread):
    out = tmp_path / "cmp"
    cfg = _config("cnn", {"epochs": 2, "batch_size": 8}, {})
    run_dir = str(out / f"cnn-{_options_hash(cfg)}" / "fold3")
    stopped = spectro.train(store, out=run_dir, config=cfg.replace(test_fold=3, val_fold=2), progress=False,
                            on_epoch=lambda row, model: True)
    assert stopped.status == "interrupted"
    c = spectro.compare(store, ["cnn"], str(out), epochs=2, batch_size=8, progress=False, timing=False)
    assert c.runs["cnn"] == [run_dir] and c.table.loc[0, "status"] == "ok"
    run = spectro.load_run(run_dir)
    assert run.status == "done" and run.info["epochs_done"] == 2
    # "train s" is what both epochs took, the one before the interruption included, not the last session's.
    epochs = pd.read_csv(os.path.join(run_dir, "metrics.csv"))["seconds"]
    assert len(epochs) == 2 and c.table.loc[0, "train_s"] == pytest.approx(epochs.sum())
    again = spectro.compare(store, ["cnn"], str(out), epochs=2, batch_size=8, progress=False, timing=False)
    assert again.table.loc[0, "train_s"] == pytest.approx(epochs.sum())  # reused: the same cost


def test_cv_pools_out_of_fold_predictions(store, tmp_path, one_thread):
    c = spectro.compare(store, ["svm", "cnn"], str(tmp_path / "cv"), cv=True, timing=False, **TINY)
    t = c.table.set_index("model")
    assert (t["status"] == "ok").all()
    for m in ("svm", "cnn"):
        p = c.predictions[m]
        np.testing.assert_array_equal(p.rows, np.arange(60))  # every example tested exactly once
        assert sorted(set(p.fold.tolist())) == [1, 2, 3] and len(c.runs[m]) == 3
        folds = [spectro.load_run(r).test_metrics["accuracy"] for r in c.runs[m]]
        assert t.loc[m, "accuracy"] == pytest.approx(np.mean(folds))
        assert t.loc[m, "accuracy_std"] == pytest.approx(np.std(folds, ddof=1))
        assert t.loc[m, "pooled_accuracy"] == pytest.approx(np.mean(p.correct))


def test_a_failing_model_is_marked_and_the_others_finish(store, tmp_path, one_thread, capsys):
    out = str(tmp_path / "cmp")
    # ~20 training examples and an explicit batch of 64: the network refuses, the svm ignores the batch size.
    rc = main(["compare", "--store", store, "--models", "svm,cnn", "--epochs", "1", "--batch-size", "64", "--out",
               out, "--quiet"])
    printed = capsys.readouterr()
    assert rc == 1
    t = pd.read_csv(os.path.join(out, "results.csv")).set_index("model")
    assert t.loc["svm", "status"] == "ok" and t.loc["cnn", "status"] == "failed"
    assert "batch size" in t.loc["cnn", "error"]
    assert "| svm |" in printed.out and "failed: batch size" in printed.out
    assert "the svm ignores batch_size, epochs" in printed.err and printed.err.count("the svm ignores") == 1


def test_bad_inputs_one_line_nonzero_and_no_run_deleted(store, tmp_path, one_thread, capsys):
    out = str(tmp_path / "cmp")
    spectro.compare(store, ["svm"], out, progress=False, timing=False)
    runs_before = sorted(os.listdir(out))

    def refused(*args) -> str:
        capsys.readouterr()
        assert main(["compare", *args, "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("spectro: error:")
        return err

    assert "unknown model 'resnet7'" in refused("--store", store, "--models", "svm,resnet7", "--out", out)
    one_fold = _npz_store(tmp_path, "onefold", y=[0, 1] * 6, folds=[1] * 12)
    assert "two or more folds" in refused("--store", one_fold, "--models", "svm", "--cv", "--out", str(tmp_path / "a"))
    one_class = _npz_store(tmp_path, "oneclass", y=[0] * 12, folds=[1, 2, 3] * 4)
    assert "class" in refused("--store", one_class, "--models", "svm", "--out", str(tmp_path / "b"))
    other = _npz_store(tmp_path, "other", y=[0, 1] * 6, folds=[1, 2, 3] * 4)
    assert "another store" in refused("--store", other, "--models", "svm", "--out", out)
    assert sorted(os.listdir(out)) == runs_before
    assert all(spectro.load_run(os.path.join(out, d, "fold3")).status == "done"
               for d in runs_before if d.startswith("svm-"))


def test_figures_are_figures_and_save():
    table = pd.DataFrame({"model": ["a", "b", "c"], "status": ["ok", "ok", "failed"], "accuracy": [0.9, 0.8, np.nan],
                          "macro_f1": [0.88, 0.7, np.nan], "accuracy_low": [0.85, 0.7, np.nan],
                          "accuracy_high": [0.95, 0.85, np.nan], "macro_f1_low": [0.8, 0.6, np.nan],
                          "macro_f1_high": [0.9, 0.8, np.nan], "train_s": [1.0, 20.0, np.nan]})
    cm = {"a": np.array([[5, 1], [0, 6]]), "b": np.array([[4, 2], [1, 5]])}
    fig = plot_comparison(table, cm, ["x", "y"])
    assert isinstance(fig, Figure)
    heat = [im.get_array() for ax in fig.get_axes() for im in ax.get_images()]
    assert len(heat) == 2 and np.allclose(heat[0][0], [5 / 6, 1 / 6])  # normalised per true class
    curves = {"plain20": pd.DataFrame({"epoch": [1, 2], "train_accuracy": [0.5, 0.6], "val_accuracy": [0.4, 0.5]}),
              "resnet20": pd.DataFrame({"epoch": [1, 2], "train_accuracy": [0.6, 0.8], "val_accuracy": [0.5, 0.6]})}
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"curves-{os.getpid()}.png")
    fig = plot_error_curves(curves, path=path)
    assert isinstance(fig, Figure) and os.path.getsize(path) > 0
    line = fig.get_axes()[0].get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), [50, 40])  # error in percent
    os.remove(path)


def test_out_must_be_compares_own_folder(store, tmp_path, one_thread, capsys):
    """A store, a training run or a folder with a user's files is never compare's --out: one line, nothing touched."""
    def refused(out) -> str:
        before = {p: Path(p).read_bytes() for p in _files(out)}
        capsys.readouterr()
        assert main(["compare", "--store", store, "--models", "svm", "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("spectro: error:")
        assert {p: Path(p).read_bytes() for p in _files(out)} == before  # nothing written, nothing deleted
        return err

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "NOTES.txt").write_text("notes")
    assert "holds files compare did not write (NOTES.txt)" in refused(mine)
    assert "is a spectro store" in refused(store)
    run = spectro.train(store, out=str(tmp_path / "run"), model="svm", progress=False)
    assert "is a training run" in refused(run.path)
    # A folder compare wrote is compare's: reused, and a user's file dropped into it later stops the next call.
    out = tmp_path / "cmp"
    spectro.compare(store, ["svm"], str(out), progress=False, timing=False)
    spectro.compare(store, ["svm"], str(out), progress=False, timing=False)
    (out / "draft").mkdir()
    assert "(draft/)" in refused(out)


def _files(root) -> list[str]:
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)


def test_a_model_at_chance_is_flagged_in_table_and_verdict(tmp_path, one_thread):
    # Every clip the same signal, labels alternating: no classifier can beat always answering one class.
    rng = np.random.default_rng(0)
    X = np.tile((0.1 * rng.standard_normal(4000)).astype(np.float32), (24, 1))
    np.savez(tmp_path / "same.npz", X=X, y=np.array([0, 1] * 12), folds=np.array([1, 2, 3] * 8))
    spectro.preprocess(str(tmp_path / "same.npz"), str(tmp_path / "same"), config=CFG, progress=False)
    c = spectro.compare(str(tmp_path / "same"), ["svm", "cnn"], str(tmp_path / "cmp"), epochs=2, batch_size=4,
                        progress=False, timing=False)
    t = c.table.set_index("model")
    assert (t["status"] == "ok").all()
    for m in ("svm", "cnn"):
        assert "at_chance" in t.loc[m, "warnings"].split(",")
        assert f"{m}: at chance level" in c.verdict
        assert any("at chance level" in w for w in c.warnings[m])
    assert "at chance ⚠" in c.markdown()
    assert pd.read_csv(tmp_path / "cmp" / "results.csv")["warnings"].str.contains("at_chance").all()


def test_classes_only_the_test_fold_holds_are_flagged_in_table_and_verdict(tmp_path, one_thread):
    # Groups that follow the classes: class "c" is only in fold 3, the test fold.
    rng = np.random.default_rng(0)
    t = np.arange(4000) / 8000
    y = np.array([0, 1] * 8 + [2] * 4)
    X = np.stack([np.sin(2 * np.pi * (300 + 400 * c) * t) + 0.05 * rng.standard_normal(t.size) for c in y])
    folds = np.array([1, 2] * 8 + [3] * 4)
    folds[[0, 1]] = 3  # the test fold also holds classes that trained
    np.savez(tmp_path / "s.npz", X=X.astype(np.float32), y=y, folds=folds)
    spectro.preprocess(str(tmp_path / "s.npz"), str(tmp_path / "s"), config=CFG, progress=False)
    c = spectro.compare(str(tmp_path / "s"), ["svm"], str(tmp_path / "cmp"), progress=False, timing=False)
    assert c.table.set_index("model").loc["svm", "warnings"] == "unseen_classes"
    assert "svm: tested on classes that no training example has" in c.verdict
    assert any("1 classes that no training example has (2)" in w for w in c.warnings["svm"])


def test_seeds_repeat_every_model_and_pool_the_paired_tests(store, tmp_path, one_thread, capsys):
    out = str(tmp_path / "seeds")
    c = spectro.compare(store, ["svm", "cnn"], out, seeds=[0, 1, 2], timing=False, **TINY)
    t = c.table.set_index("model")
    assert (t["status"] == "ok").all()
    st = spectro.open_store(store)
    test_rows = np.flatnonzero(st.folds == max(st.fold_ids))
    for m in ("svm", "cnn"):
        assert len(c.runs[m]) == 3  # one run per seed, each its own directory
        runs = [spectro.load_run(r) for r in c.runs[m]]
        assert sorted(r.train_config.seed for r in runs) == [0, 1, 2]
        accs = [r.test_metrics["accuracy"] for r in runs]
        assert t.loc[m, "accuracy"] == pytest.approx(np.mean(accs))  # mean ± std over seeds
        assert t.loc[m, "accuracy_std"] == pytest.approx(np.std(accs, ddof=1))
        p = c.predictions[m]  # every test example once per seed, paired by (row, seed)
        np.testing.assert_array_equal(p.rows, np.repeat(test_rows, 3))
        np.testing.assert_array_equal(p.seed, np.tile([0, 1, 2], test_rows.size))
        assert t.loc[m, "pooled_accuracy"] == pytest.approx(np.mean(accs))
    other = "cnn" if c.best == "svm" else "svm"
    p_raw = mcnemar_exact(c.predictions[c.best].correct, c.predictions[other].correct)[0]
    assert t.loc[other, "p_mcnemar"] == pytest.approx(p_raw)  # the test runs on the pooled pairs
    assert "20 held-out examples x 3 seeds" in c.verdict
    assert "once per seed (0, 1, 2)" in Path(out, "report.md").read_text()
    # Finished runs are reused, for the same seeds and for a subset of them.
    stamps = {r: os.path.getmtime(os.path.join(r, "run.json")) for m in c.runs for r in c.runs[m]}
    again = spectro.compare(store, ["svm", "cnn"], out, seeds=[0, 1], timing=False, **TINY)
    assert {r: os.path.getmtime(os.path.join(r, "run.json")) for m in again.runs for r in again.runs[m]} == \
        {r: stamps[r] for m in again.runs for r in again.runs[m]}
    # From the command line: --seeds 0,1,2, and one line when given with --seed.
    capsys.readouterr()
    assert main(["compare", "--store", store, "--models", "svm", "--seeds", "0,1,2", "--seed", "3", "--out",
                 out, "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == "spectro: error: give --seed or --seeds, not both"
    assert main(["compare", "--store", store, "--models", "svm", "--seeds", "0,1,2", "--out", out, "--quiet"]) == 0
    assert "± " in capsys.readouterr().out


def test_ensemble_row_averages_the_compared_models_at_no_training(store, tmp_path, one_thread, capsys):
    out = tmp_path / "ens"
    c = spectro.compare(store, "svm,cnn,ensemble", str(out), timing=False, **TINY)
    t = c.table.set_index("model")
    assert list(t.index) == ["svm", "cnn", "ensemble"] and (t["status"] == "ok").all()
    e, s, n = c.predictions["ensemble"], c.predictions["svm"], c.predictions["cnn"]
    np.testing.assert_array_equal(e.rows, s.rows)
    np.testing.assert_allclose(e.proba, (s.proba + n.proba) / 2, rtol=1e-6)
    np.testing.assert_array_equal(e.y_pred, e.proba.argmax(axis=1))
    assert t.loc["ensemble", "accuracy"] == pytest.approx(np.mean(e.y_pred == e.y_true))
    assert t.loc["ensemble", "params"] == t.loc["svm", "params"] + t.loc["cnn", "params"]
    assert t.loc["ensemble", "train_s"] == pytest.approx(t.loc["svm", "train_s"] + t.loc["cnn", "train_s"])
    # Tested and drawn like any model; no run directory of its own.
    assert t.loc["ensemble", "significant"] in ("best", "yes", "no")
    if c.best != "ensemble":
        assert 0 <= t.loc["ensemble", "p_holm"] <= 1
    assert sorted(d.split("-")[0] for d in os.listdir(out) if os.path.isdir(out / d)) == ["cnn", "svm"]
    assert len([a for a in c.figure().get_axes() if a.get_images()]) == 3
    assert "- ensemble: no runs of its own" in (out / "report.md").read_text()
    why = c.explain(examples=1, progress=False)  # explains the models that have runs; the ensemble is in the table
    assert why.models == ["svm", "cnn"] and "ensemble" in open(why.report_path, encoding="utf-8").read()
    capsys.readouterr()
    assert main(["compare", "--store", store, "--models", "svm,ensemble", "--out", str(tmp_path / "e1"),
                 "--quiet"]) == 2
    assert "ensemble averages the other compared models" in capsys.readouterr().err


def test_options_added_later_keep_old_run_names_until_they_are_used():
    # "206f39" is the name compare gave resnet18 at 20 epochs before --gain-eq existed (the README's --cv runs):
    # an option added at its former value must not rename, and so retrain, every finished run.
    assert _options_hash(_config("resnet18", {"epochs": 20}, {})) == "206f39"
    assert _options_hash(_config("resnet18", {"epochs": 20, "gain_eq": 6.0}, {})) != "206f39"


def test_reference_row_is_the_script_scored_on_the_same_test_examples(store, tmp_path, one_thread):
    from spectro.models.reference import ReferenceClassifier, script_logmels

    out = tmp_path / "ref"
    c = spectro.compare(store, "svm,reference", str(out), timing=False, seeds=[0, 1], **TINY)
    t = c.table.set_index("model")
    assert list(t.index) == ["svm", "reference"] and (t["status"] == "ok").all(), t["error"]
    r, s = c.predictions["reference"], c.predictions["svm"]
    np.testing.assert_array_equal(r.rows, s.rows)  # the same test examples, seed for seed
    np.testing.assert_array_equal(r.seed, s.seed)
    assert t.loc["reference", "accuracy"] == pytest.approx(np.mean(r.y_pred == r.y_true))
    assert not np.isnan(t.loc["reference", "p_mcnemar"]) or t.loc["reference", "significant"] == "best"
    # The numbers are the script's: its own log-mels of the raw files, trained on every non-test row.
    st = spectro.open_store(store)
    base = st.meta["source"]["path"]
    X = script_logmels([os.path.join(base, p) for p in st.paths])[:, None]
    test = np.flatnonzero(st.folds == max(st.fold_ids))
    train = np.setdiff1d(np.arange(len(st)), test)
    names = np.asarray(st.labels, dtype=object)
    clf = ReferenceClassifier(seed=1).fit(X[train], names[st.y[train]], groups=st.groups[train])
    expected = [st.labels.index(v) for v in clf.predict(X[test])]
    np.testing.assert_array_equal(r.y_pred[r.seed == 1], expected)
    assert (out / "reference").is_dir()  # its log-mels, reused by a second compare into the same folder


def test_reference_row_says_in_one_line_when_the_raw_files_are_gone(tmp_path, one_thread):
    y = np.repeat([0, 1], 10)
    store = _npz_store(tmp_path, "npz", y=y, folds=np.tile([0, 1], 10))
    os.remove(tmp_path / "npz.npz")
    c = spectro.compare(store, "svm,reference", str(tmp_path / "cmp"), timing=False, **TINY)
    t = c.table.set_index("model")
    assert t.loc["svm", "status"] == "ok" and t.loc["reference", "status"] == "failed"
    assert "raw files" in t.loc["reference", "error"] and "\n" not in t.loc["reference", "error"]


def test_reference_fits_when_the_training_rows_hold_one_group():
    # A cross-engine split trains on one engine: one group, so grouped inner folds cannot split; it then
    # searches C on folds of examples, as it does without groups.
    from spectro.models.reference import ReferenceClassifier

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 12)
    X = rng.normal(size=(24, 1, 64, 8)).astype(np.float32) + y[:, None, None, None]
    one = ReferenceClassifier(seed=0).fit(X, y, groups=np.zeros(24, int))
    none = ReferenceClassifier(seed=0).fit(X, y)
    assert one.best_params_ == none.best_params_
    np.testing.assert_array_equal(one.predict(X), none.predict(X))
