"""The SVM chooses its front-end by its inner group cross-validation (issue 28, item 1).

Two synthetic sets, each built so that one front-end wins:

* ``fast``: in one class one band flickers +-3 from frame to frame, in the
  other it is still; pooling 6 frames averages the flicker away (and a loud
  constant band fixes every clip's peak), so only the store's own frames
  (``stats``) tell the classes apart.
* ``gain``: the classes differ only in the shape of the spectrum, and every clip
  has a random gain of up to +-12 (in units of the noise) added to every pixel;
  the per-band means then mostly measure the gain, and referencing each clip to
  its peak (``pool6+peak+stats``, the script's front-end) removes it.
"""

import json

import numpy as np
import pytest

from spectro.dataset.summaries import FRONTENDS, SpectrogramFeatures, front, parse_frontend
from spectro.errors import SpectroError
from spectro.models import SVMClassifier
from spectro.training.classifier import load_classifier

CANDIDATES = ("stats", "pool6+peak+stats")
N_GROUPS, PER_GROUP, F, T = 8, 12, 12, 48


def fast_set(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = N_GROUPS * PER_GROUP
    y = np.arange(n) % 2
    X = rng.normal(0.0, 1.0, (n, 1, F, T))
    flicker = 3.0 * np.where(np.arange(T) % 2 == 0, 1.0, -1.0)  # sums to 0 over any 6 frames
    X[y == 0, 0, 5] += flicker
    X[:, 0, 0] += 10.0  # every clip's peak: the same for both classes
    return X.astype(np.float32), np.array(["a", "b"])[y], np.repeat(np.arange(N_GROUPS), PER_GROUP)


def gain_set(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = N_GROUPS * PER_GROUP
    y = np.arange(n) % 3
    shapes = np.zeros((3, F))
    shapes[0, 2:4], shapes[1, 6:8], shapes[2, 9:11] = 2.0, 2.0, 2.0
    X = rng.normal(0.0, 0.5, (n, 1, F, T)) + shapes[y][:, None, :, None]
    X += rng.uniform(-12.0, 12.0, (n, 1, 1, 1))  # the clip's gain
    return X.astype(np.float32), np.array(["a", "b", "c"])[y], np.repeat(np.arange(N_GROUPS), PER_GROUP)


def accuracy(frontend: str, train, test) -> float:
    clf = SVMClassifier(frontend=frontend, C_grid=(1.0, 10.0), gamma_factors=(1.0,), seed=0)
    clf.fit(train[0], train[1], groups=train[2])
    return float(np.mean(clf.predict(test[0]) == test[1]))


@pytest.mark.parametrize("make, winner", [(fast_set, "stats"), (gain_set, "pool6+peak+stats")])
def test_the_svm_picks_the_front_end_that_wins_on_unseen_data(make, winner):
    train, test = make(0), make(1)
    # Each fixed front-end on fresh data: the set is built so that ``winner`` is clearly better.
    scores = {fe: accuracy(fe, train, test) for fe in CANDIDATES}
    loser = next(fe for fe in CANDIDATES if fe != winner)
    assert scores[winner] > scores[loser] + 0.2, scores
    clf = SVMClassifier(frontends=CANDIDATES, C_grid=(1.0, 10.0), gamma_factors=(1.0,), seed=0)
    clf.fit(train[0], train[1], groups=train[2])
    assert clf.frontend_ == winner, clf.frontend_scores_
    assert set(clf.frontend_scores_) == set(CANDIDATES)
    assert clf.frontend_scores_[winner] > clf.frontend_scores_[loser]
    assert clf.best_params_["frontend"] == winner
    assert clf.describe_fit().startswith(f"front-end {winner} (chosen of 2)")
    # predict follows the choice: the same as the fixed winner.
    assert np.mean(clf.predict(test[0]) == test[1]) == pytest.approx(scores[winner])


def test_the_chosen_front_end_is_saved_and_followed_after_loading(tmp_path):
    train, test = gain_set(0), gain_set(1)
    clf = SVMClassifier(frontends=CANDIDATES, C_grid=(1.0,), gamma_factors=(1.0,)).fit(*train[:2], groups=train[2])
    clf.save(tmp_path / "svm")
    manifest = json.loads((tmp_path / "svm" / "model.json").read_text())
    assert manifest["best_params"]["frontend"] == clf.frontend_
    assert set(manifest["frontend_scores"]) == set(CANDIDATES)
    loaded = load_classifier(tmp_path / "svm")
    assert loaded.frontend_ == clf.frontend_
    np.testing.assert_array_equal(loaded.predict_proba(test[0]), clf.predict_proba(test[0]))


def test_a_run_saved_with_the_old_features_option_loads_as_that_front_end(tmp_path):
    X, y, _ = fast_set(0)
    clf = SVMClassifier(frontend="stats+delta", C_grid=(1.0,), gamma_factors=(1.0,)).fit(X, y)
    clf.save(tmp_path)
    manifest = json.loads((tmp_path / "model.json").read_text())
    options = manifest["options"]
    options["features"] = options.pop("frontend")
    del options["frontends"]
    (tmp_path / "model.json").write_text(json.dumps(manifest))
    loaded = load_classifier(tmp_path)
    assert loaded.frontend == "stats+delta"
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    # and the old option name is taken by create (bench specs, model_options of old configs)
    assert SVMClassifier.create(features="stats+pct").frontend == "stats+pct"


def test_front_end_transforms_known_answers():
    x = np.arange(2 * 1 * 2 * 7, dtype=np.float64).reshape(2, 1, 2, 7)
    pooled = front(x, parse_frontend("pool3+stats"))
    np.testing.assert_array_equal(pooled[0, 0], [[1, 4], [8, 11]])  # means of frames 0-2 and 3-5; 6 dropped
    peak = front(x, parse_frontend("peak+stats"))
    assert peak.max(axis=(2, 3)).tolist() == [[0.0], [0.0]] and peak[0, 0, 0, 0] == -13
    cmn = front(x, parse_frontend("cmn+stats"))
    np.testing.assert_allclose(cmn.mean(axis=-1), 0.0, atol=1e-12)
    # A constant added to a clip moves no summary of a peak- or band-normalised front-end.
    rng = np.random.default_rng(0)
    img = rng.normal(size=(3, 1, 8, 30))
    for spec in FRONTENDS[1:]:
        fe = SpectrogramFeatures(spec).fit(img)
        np.testing.assert_allclose(fe.transform(img + 7.0), fe.transform(img), atol=1e-9, err_msg=spec)
    assert str(parse_frontend("stats+peak+pool6")) == "pool6+peak+stats"  # one canonical spelling
    for bad in ("pool0+stats", "peak", "pool6+mfcc", "stats+stats"):
        with pytest.raises(SpectroError, match="front-end"):
            parse_frontend(bad)
    with pytest.raises(SpectroError, match="front-end"):
        SVMClassifier(frontends=("stats", "nope")).fit(*fast_set(0)[:2])


@pytest.mark.parametrize("spec", [*FRONTENDS, "pool4+cmn+stats+dct+pca", "stats+delta+range"])
def test_every_front_end_exports_to_onnx_with_the_same_probabilities(spec):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("skl2onnx", reason="the onnx extra is not installed")
    from spectro.models.svm_onnx import svm_to_onnx

    X, y, groups = gain_set(0)
    clf = SVMClassifier(frontend=spec, C_grid=(1.0,), gamma_factors=(1.0,), n_components=4).fit(X, y, groups=groups)
    session = ort.InferenceSession(svm_to_onnx(clf, opset=17).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    x = gain_set(1)[0][:20]
    [proba] = session.run(["probabilities"], {"image": x})
    np.testing.assert_allclose(proba, clf.predict_proba(x), atol=1e-4)
