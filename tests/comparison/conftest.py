"""The compare tests' store: 60 clips of the bundled digits in voice-disjoint folds."""

import pytest
from synth import DIGITS_CFG_KW, digits_subset

import spectro
from spectro.config import FeatureConfig


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """60 clips: 5 digits x 6 voices x 2 takes, 3 voice-disjoint folds of 20."""
    base = tmp_path_factory.mktemp("digits")
    src = digits_subset(base / "src")
    spectro.preprocess(src, str(base / "store"), config=FeatureConfig(**DIGITS_CFG_KW), label_regex=r"^(\d)_",
                       group_regex=r"^\d_([a-z0-9]+)_", k_folds=3, progress=False)
    return str(base / "store")
