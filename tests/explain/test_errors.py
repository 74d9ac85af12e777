"""Errors and disagreements: hand-made probabilities with known answers."""

import numpy as np
import pytest

from spectro.errors import SpectroError
from spectro.explain.errors import confident_errors, disagreements, discordant_pairs

LABELS = ["cat", "dog", "owl"]
SOURCES = [f"clip{i}.wav" for i in range(5)]
Y = np.array([0, 1, 2, 0, 1])
PROBA = {
    # right, wrong (0.9 on owl), right, wrong (0.6 on dog), right
    "svm": np.array([[.8, .1, .1], [.05, .05, .9], [.1, .1, .8], [.3, .6, .1], [.1, .8, .1]]),
    # right everywhere but example 4 (0.7 on cat)
    "cnn": np.array([[.8, .1, .1], [.1, .8, .1], [.1, .1, .8], [.7, .2, .1], [.7, .2, .1]]),
}


def test_confident_errors_most_confident_first():
    t = confident_errors(PROBA, Y, labels=LABELS, sources=SOURCES, k=4)
    svm = t[t.model == "svm"]
    assert svm.position.tolist() == [1, 3]  # 0.9 before 0.6
    assert svm.iloc[0][["true", "predicted", "source"]].tolist() == ["dog", "owl", "clip1.wav"]
    assert svm.iloc[0].probability == pytest.approx(0.9) and svm.iloc[0].p_true == pytest.approx(0.05)
    assert t[t.model == "cnn"].position.tolist() == [4]
    assert len(confident_errors(PROBA, Y, labels=LABELS, sources=SOURCES, k=1)) == 2  # k per model


def test_disagreements_and_the_pairs_mcnemar_counts():
    d = disagreements(PROBA, Y, labels=LABELS, sources=SOURCES)
    assert sorted(d.position.tolist()) == [1, 3, 4]  # examples 0 and 2: both right, same class
    assert d.set_index("position").loc[1, ["svm", "cnn", "right"]].tolist() == ["owl", "dog", 1]
    p = discordant_pairs(PROBA, Y).iloc[0]
    assert (p.a, p.b, p.only_a, p.only_b, p.both_right, p.both_wrong) == ("svm", "cnn", 1, 2, 2, 0)


def test_a_table_of_the_wrong_length_is_refused():
    with pytest.raises(SpectroError, match="svm: probabilities shaped"):
        confident_errors({"svm": PROBA["svm"][:3]}, Y, labels=LABELS, sources=SOURCES)
