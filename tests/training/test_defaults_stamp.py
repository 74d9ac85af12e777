"""The defaults stamp: which defaults belong to which outputs."""

import pytest

from spectro.models.svm import SVMClassifier
from spectro.training import defaults
from spectro.training.defaults import defaults_stamp, stamp_kinds


def test_kinds_of_the_models_a_notebook_trains():
    assert stamp_kinds(["plain20", "resnet20"]) == ("net",)
    assert stamp_kinds(["svm", "cnn", "ensemble"]) == ("net", "svm")
    assert stamp_kinds(["svm", "reference"]) == ("svm",)
    assert stamp_kinds(["a-model-spectro-does-not-know"]) == ("net", "svm")  # never narrower than its output


def test_an_svm_default_changes_the_stamps_with_an_svm_only(monkeypatch):
    full, nets, svm = defaults_stamp(), defaults_stamp(("net",)), defaults_stamp(("svm",))
    assert nets != full  # the SVM's settings are in every stamp of an output with an SVM, and only there
    params = SVMClassifier().get_params()
    monkeypatch.setattr(SVMClassifier, "get_params", lambda self, deep=True: {**params, "C_grid": (1.0,)})
    assert defaults_stamp(("net",)) == nets
    assert defaults_stamp() != full and defaults_stamp(("svm",)) != svm


@pytest.mark.parametrize("kinds", [("net",), ("svm",), ("net", "svm")])
def test_a_training_default_changes_every_stamp(kinds, monkeypatch):
    before = defaults_stamp(kinds)
    monkeypatch.setattr(defaults.health, "IMPROVING_BY", defaults.health.IMPROVING_BY + 0.01)
    assert defaults_stamp(kinds) != before
