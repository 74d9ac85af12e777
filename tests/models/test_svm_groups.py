"""The SVM's inner search is group-aware, and its richer feature parts give known answers."""

import os
import shutil

import numpy as np
import pytest
from scipy.fft import dct
from synth import DIGITS

import spectro
from spectro.errors import SpectroError
from spectro.models import SVMClassifier
from spectro.models import svm as svm_module
from spectro.dataset.summaries import N_DCT, SpectrogramFeatures, summarise
from spectro.models.svm import inner_folds
from spectro.training.classifier import load_classifier


def grouped_tones(n_groups=6, per_group=12, *, classes=3, freq=16, time=24, seed=0):
    """Images (N, 1, F, T): class k has a tone in bin 3 + 4k; each group adds its own offset."""
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    y = np.arange(n) % classes
    groups = np.repeat([f"g{i}" for i in range(n_groups)], per_group)
    X = rng.normal(0.0, 1.0, (n, 1, freq, time))
    X[np.arange(n), 0, 3 + 4 * y, :] += 2.0
    X += rng.normal(0.0, 1.0, (n_groups, 1, freq, 1)).repeat(per_group, axis=0)  # a group's timbre
    return X.astype(np.float32), y, groups


# --- inner folds -----------------------------------------------------------------------


@pytest.mark.parametrize("n_groups, n_splits", [(6, 3), (4, 3), (2, 3), (9, 5)])
def test_inner_folds_never_put_one_group_on_both_sides(n_groups, n_splits):
    _, y, groups = grouped_tones(n_groups)
    folds = inner_folds(y, groups, n_splits=n_splits, seed=0)
    assert len(folds) == min(n_splits, n_groups)
    tested = []
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])
        assert len(train) + len(test) == len(y)
        tested += groups[test].tolist()
    assert sorted(tested) == sorted(groups.tolist())  # every row is tested exactly once


def test_inner_folds_without_groups_are_stratified_and_seeded():
    y = np.arange(60) % 3
    for groups in (None, np.arange(60).astype(str)):  # no groups, or one row per group
        folds = inner_folds(y, groups, n_splits=3, seed=4)
        assert len(folds) == 3
        for _, test in folds:
            assert set(np.bincount(y[test], minlength=3).tolist()) <= {6, 7}  # 20 per class over 3 folds
        again = inner_folds(y, groups, n_splits=3, seed=4)
        assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))


def test_inner_folds_refuse_groups_of_another_length():
    with pytest.raises(SpectroError, match="groups"):
        inner_folds(np.arange(10) % 2, ["a"] * 9, n_splits=3, seed=0)


def test_fit_searches_and_calibrates_on_group_disjoint_folds(monkeypatch, tmp_path):
    X, y, groups = grouped_tones()
    seen = []
    real = svm_module.GridSearchCV

    def spy(*args, **kwargs):
        seen.append(kwargs["cv"])
        return real(*args, **kwargs)

    monkeypatch.setattr(svm_module, "GridSearchCV", spy)
    clf = SVMClassifier(C_grid=(1.0, 10.0), gamma_factors=(1.0,)).fit(X, y, groups=groups)
    # One search per candidate front-end, then the grid on the chosen one: all on the same folds.
    assert len(seen) == len(svm_module.FRONTENDS) + 1
    folds = seen[0]
    assert all(s is folds for s in seen)
    assert len(folds) == 3
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])
    assert np.mean(clf.predict(X) == y) > 0.9
    # The saved model holds no row indices, and reloads to the same probabilities.
    assert clf.pipeline_["svc"].cv == 3
    clf.save(tmp_path / "svm")
    np.testing.assert_array_equal(load_classifier(tmp_path / "svm").predict_proba(X), clf.predict_proba(X))


def test_net_classifier_accepts_and_ignores_groups():
    X, y, groups = grouped_tones(n_groups=2, per_group=6, freq=16, time=16)
    clf = spectro.make_classifier("cnn", epochs=1, batch_size=4, device="cpu")
    assert clf.fit(X, y, groups=groups) is clf


def test_train_gives_the_svm_the_stores_groups(monkeypatch, tmp_path):
    # 3 digits x 6 voices x 2 takes of the bundled set; voices are the groups.
    src = tmp_path / "src"
    src.mkdir()
    voices = ["croak", "f1", "m2", "klatt", "steph", "whisper"]
    for d in "012":
        for v in voices:
            for take in "01":
                shutil.copy(os.path.join(DIGITS, f"{d}_{v}_{take}.flac"), src)
    store = str(tmp_path / "store")
    spectro.preprocess(str(src), store, config=spectro.FeatureConfig(sample_rate=8000, hop_length=80),
                       k_folds=3, workers=1, progress=False, label_regex=r"^(\d)_",
                       group_regex=r"^\d_([a-z0-9]+)_")
    seen = []
    real = svm_module.inner_folds

    def spy(y, groups, **kw):
        seen.append(None if groups is None else np.asarray(groups))
        return real(y, groups, **kw)

    monkeypatch.setattr(svm_module, "inner_folds", spy)
    run = spectro.train(store, "svm", str(tmp_path / "run"), test_fold=3, progress=False,
                        model_options={"C_grid": [1.0], "gamma_factors": [1.0]})
    st = spectro.open_store(store)
    (groups,) = seen
    assert groups is not None and set(groups) <= set(voices)
    assert not set(groups) & set(st.groups[st.folds == 3])  # the test fold's voices never train
    assert run.test_metrics is not None


# --- feature parts -----------------------------------------------------------------------


def test_feature_parts_known_answers():
    f, t = 8, 10
    x = np.zeros((1, 1, f, t))
    x[0, 0, 2, :] = 5.0  # a constant band
    x[0, 0, 4, :] = 3.0 * np.arange(t)  # a rising band: slope 3 per frame
    stats = summarise(x, ["stats"])
    assert stats.shape == (1, 2 * f)
    assert stats[0, 2] == 5.0 and stats[0, f + 2] == 0.0
    pct = summarise(x, ["pct"]).reshape(3, f)
    np.testing.assert_allclose(pct[:, 2], 5.0)
    np.testing.assert_allclose(pct[:, 4], np.percentile(3.0 * np.arange(t), [10, 50, 90]))
    delta = summarise(x, ["delta"]).reshape(2, f)
    np.testing.assert_allclose(delta[:, 2], 0.0)
    np.testing.assert_allclose(delta[:, 4], [3.0, 0.0])  # mean |slope|, no spread
    flat = np.full((1, 1, f, t), 2.0)  # constant over frequency: only the DC coefficient
    d = summarise(flat, ["dct"]).reshape(2, min(f, N_DCT))
    np.testing.assert_allclose(d[0], [2.0 * np.sqrt(f)] + [0.0] * (f - 1), atol=1e-12)
    np.testing.assert_allclose(d[1], 0.0, atol=1e-12)


def test_feature_sizes_and_order_of_parts():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 1, 40, 12))
    feats = SpectrogramFeatures("stats+pct+delta+dct").fit(X)
    Z = feats.transform(X)
    assert Z.shape == (5, 2 * 40 + 3 * 40 + 2 * 40 + 2 * N_DCT)
    # Parts are put in one canonical order, whatever order the option names them.
    np.testing.assert_array_equal(SpectrogramFeatures("dct+stats").fit(X).transform(X),
                                  SpectrogramFeatures("stats+dct").fit(X).transform(X))
    mfcc = dct(X, type=2, norm="ortho", axis=2)[:, :, :N_DCT].mean(axis=-1).reshape(5, -1)
    np.testing.assert_allclose(Z[:, 280:280 + N_DCT], mfcc)


@pytest.mark.parametrize("bad", ["mfcc", "stats+stats", "", "stats+"])
def test_unknown_feature_parts_are_refused(bad):
    with pytest.raises(SpectroError, match="front-end"):
        SpectrogramFeatures(bad).fit(np.zeros((2, 1, 4, 4)))


@pytest.mark.parametrize("calibration", ["temperature", "sigmoid"])
def test_svm_size_counts_what_it_stores_to_predict(calibration):
    # Counted by hand on a tiny fit: 4 classes, 8 frequency rows -> 16 features (mean and std per row).
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 1, 8, 10)).astype(np.float32)
    y = np.repeat([0, 1, 2, 3], 10)
    X[y == 1] += 1
    X[y == 2] -= 1
    clf = SVMClassifier(frontend="stats", C_grid=(1.0,), gamma_factors=(1.0,), calibration=calibration).fit(X, y)
    svc = clf.pipeline_["svc"].calibrated_classifiers_[0].estimator
    n_sv, d = svc.support_vectors_.shape
    assert d == 16
    by_hand = (n_sv * d          # support vectors
               + 3 * n_sv        # dual coefficients: (classes - 1) per support vector
               + 6 + 1           # intercepts, one per pair of classes, and gamma
               + 2 * d           # the scaler's mean and scale
               + (1 if calibration == "temperature" else 2 * 4))  # beta, or Platt's a and b per class
    assert clf.n_parameters() == by_hand
    assert f"{n_sv} support vectors" in clf.describe_fit()
