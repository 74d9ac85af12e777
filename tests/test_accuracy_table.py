"""benchmarks/accuracy_table.py: the targets' margins, the default chosen on the suite, leave-one-set-out."""

import os
import sys

import pandas as pd
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import accuracy_table as at  # noqa: E402  (benchmarks/ is not a package)


def rows(acc: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    """bench_accuracy.py's CSV rows: (set, model) -> accuracy per fold (seed 0)."""
    out = []
    for (dataset, model), accs in acc.items():
        for fold, a in enumerate(accs, start=1):
            out.append({"dataset": dataset, "features": "default", "model": model, "seed": 0, "fold": fold,
                        "accuracy": a, "macro_f1": a, "seconds": 1.0, "epochs": 0})
    return pd.DataFrame(out)


# Three sets. svm+fe1 is best on average but loses to the script on "c"; svm+fe0 never loses.
SUITE = rows({
    ("a", "script-svc"): [0.50, 0.50], ("a", "svm+fe0"): [0.52, 0.52], ("a", "svm+fe1"): [0.70, 0.70],
    ("b", "script-svc"): [0.60, 0.60], ("b", "svm+fe0"): [0.61, 0.61], ("b", "svm+fe1"): [0.80, 0.80],
    ("c", "script-svc"): [0.40, 0.40], ("c", "svm+fe0"): [0.42, 0.42], ("c", "svm+fe1"): [0.30, 0.30],
})


def test_suite_margins_are_points_against_the_script_on_shared_cells():
    m = at.suite_means(SUITE)
    assert m.loc["a", "svm+fe1"] == pytest.approx(20.0)
    assert m.loc["c", "svm+fe1"] == pytest.approx(-10.0)
    assert m.loc["b", "svm+fe0"] == pytest.approx(1.0)


def test_the_default_is_the_candidate_whose_worst_set_is_best():
    m = at.suite_means(SUITE)
    assert at.choose_default(m, ["svm+fe0", "svm+fe1"]) == "svm+fe0"  # fe1's mean is higher, its worst set -10


def test_leave_one_set_out_can_fail_on_the_held_out_set():
    m = at.suite_means(SUITE)
    result = {r["held_out"]: r for r in at.leave_one_set_out(m, ["svm+fe0", "svm+fe1"])}
    # Without "c", fe1 wins on a and b (+20, +20 against +2, +1) and then loses 10 points on c.
    assert result["c"]["chosen"] == "svm+fe1"
    assert result["c"]["margin"] == pytest.approx(-10.0) and not result["c"]["holds"]
    # Without a (or b), c is in the choice and fe0 is chosen, which holds on the set left out.
    assert result["a"]["chosen"] == "svm+fe0" and result["a"]["holds"]
    assert result["b"]["chosen"] == "svm+fe0" and result["b"]["margin"] == pytest.approx(1.0)


def test_the_four_targets_each_have_their_margin():
    d = rows({("digits", "script-svc"): [0.50, 0.60], ("digits", "svm"): [0.55, 0.59],
              ("digits", "script-resnet18"): [0.69, 0.69], ("digits", "resnet18"): [0.72, 0.74],
              ("digits", "cnn"): [0.11, 0.11]}).assign(spec=lambda x: x.model)
    lines = dict(at.target_margins(d, "digits"))
    assert "+2.0 points (met)" in lines["svm >= script-svc"]
    assert "+4.0 points (met)" in lines["resnet18 >= script-resnet18"]
    assert "+4.0 points (met (goal +5 not)" in lines["best >= script best + 3"]
    assert "AT CHANCE" in lines["no default at chance"]  # the cnn, 0.11 against 1 / 10
    worse = d.assign(accuracy=d.accuracy.where(d.model != "svm", 0.5))
    assert "MISSED" in dict(at.target_margins(worse, "digits"))["svm >= script-svc"]


def test_without_arguments_it_reads_the_committed_suite(capsys):
    for name in at.SUITE:  # every file it names is committed
        assert os.path.isfile(os.path.join(at.RESULTS, name)), name
    assert at.main([]) == 0
    out = capsys.readouterr().out
    committed = set(pd.concat([pd.read_csv(os.path.join(at.RESULTS, f)) for f in at.SUITE]).dataset)
    for dataset in committed:  # a table per set of the committed rows
        assert f"### {dataset}\n" in out, dataset
