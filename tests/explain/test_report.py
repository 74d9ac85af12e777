"""spectro explain and Comparison.explain on a tiny real store: the files, the numbers, a self-contained page."""

import base64
import os
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image  # matplotlib's own dependency
from synth import DIGITS

import spectro
from spectro.cli.main import main
from spectro.config import FeatureConfig
from spectro.errors import SpectroError
from spectro.explain.explain import FIGURES, explain_runs
from spectro.explain.occlusion import occlusion_maps

CFG = FeatureConfig(sample_rate=8000, duration=0.5, n_fft=256, hop_length=128, n_mels=32)  # 1 x 32 x 32
VOICES = ("croak", "f1", "m2", "klatt", "steph", "grandpa")


def _store(base, folds):
    """36 clips: 3 digits x 6 voices x 2 takes, in ``folds`` voice-disjoint folds."""
    src = base / "src"
    os.makedirs(src)
    for name in sorted(os.listdir(DIGITS)):
        d, v, k = name[:-5].split("_")
        if d in "012" and v in VOICES and k in "01":
            os.symlink(os.path.join(DIGITS, name), src / name)
    spectro.preprocess(str(src), str(base / "store"), config=CFG, label_regex=r"^(\d)_",
                       group_regex=r"^\d_([a-z0-9]+)_", k_folds=folds, progress=False)
    return str(base / "store")


@pytest.fixture(scope="module")
def comparison(tmp_path_factory, one_thread):
    """svm and cnn compared on 36 clips: 3 digits x 6 voices x 2 takes, 3 voice-disjoint folds."""
    base = tmp_path_factory.mktemp("explain")
    _store(base, 3)
    return spectro.compare(str(base / "store"), ["svm", "cnn"], str(base / "cmp"), epochs=2, batch_size=8,
                           progress=False, timing=False)


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.refs, self.tags, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k == "src" and tag == "img":
                self.images.append(v)
            elif k in ("src", "href", "srcset", "data", "action"):
                self.refs.append(v)

    def handle_data(self, data):
        self.text.append(data)


def _parse(path):
    page = _Page()
    with open(path, encoding="utf-8") as f:
        html = f.read()
    page.feed(html)
    return page, html


def test_comparison_explain_writes_a_self_contained_report(comparison, tmp_path):
    out = str(tmp_path / "why")
    r = comparison.explain(out, examples=2, progress=False)
    assert r.models == ["svm", "cnn"] and r.report_path == os.path.join(out, "report.html")
    for name in FIGURES:
        assert os.path.getsize(os.path.join(out, f"{name}.png")) > 10_000
    # The numbers: every model tested on the same 12 clips of one fold; importance over every Hz row.
    assert r.test_rows.size == 12 and all(v.shape == (32,) for v in r.over_frequency.values())
    st = spectro.open_store(spectro.load_run(comparison.runs["svm"][0]).info["store"]["path"])
    np.testing.assert_array_equal(r.test_rows, comparison.predictions["svm"].rows)
    for m in r.models:
        assert r.accuracy[m] == pytest.approx(np.mean(comparison.predictions[m].correct))
        assert np.isfinite(r.group_vs_class[m]) and -2 <= r.group_vs_class[m] <= 2  # 2 voices in the test fold
    assert r.group_vs_class_on == "test"
    t = r.table()
    assert list(t["model"]) == ["svm", "cnn"]
    assert (t["band from Hz"] <= t["peak Hz"]).all() and (t["peak Hz"] <= t["band to Hz"]).all()
    assert set(r.errors["model"]) <= {"svm", "cnn"} and (r.errors["probability"] >= 1 / 3).all()
    assert len(r.pairs) == 1
    assert set(r.disagreements["position"]) == set(
        np.flatnonzero(comparison.predictions["svm"].y_pred != comparison.predictions["cnn"].y_pred))
    assert set(r.errors["source"]) <= set(st.paths[r.test_rows])

    page, html = _parse(r.report_path)
    assert len(page.images) == len(FIGURES) + 1  # and compare's own figure
    with open(comparison.figure_path, "rb") as f:
        assert page.images[0] == "data:image/png;base64," + base64.b64encode(f.read()).decode()
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.refs == [] and "script" not in page.tags and "link" not in page.tags
    assert "http://" not in html and "https://" not in html
    text = " ".join(page.text)
    assert comparison.verdict in text and "svm" in text and "cnn" in text and "Embeddings" in text


def test_a_test_fold_of_one_group_measures_group_against_class_on_the_training_clips(tmp_path, one_thread):
    store = _store(tmp_path, 6)  # one voice per fold: a leave-one-speaker-out test fold
    run = spectro.train(store, "svm", str(tmp_path / "svm"), test_fold=1, progress=False)
    r = explain_runs({"svm": run}, out=str(tmp_path / "why"), examples=1, progress=False)
    st = spectro.open_store(store)
    assert np.unique(st.groups[r.test_rows]).size == 1
    assert r.group_vs_class_on == "train" and np.isfinite(r.group_vs_class["svm"])
    assert r.table()["silhouette of"].tolist() == ["train"]


def test_spectro_explain_one_run_from_the_command_line(comparison, tmp_path, capsys):
    run = comparison.runs["cnn"][0]
    out = str(tmp_path / "cnn-why")
    assert main(["explain", run, "--examples", "1", "--out", out, "--quiet", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "peak Hz" in printed and f"report {out}/report.html" in printed
    page, _ = _parse(os.path.join(out, "report.html"))
    assert len(page.images) == len(FIGURES) and all(s.startswith("data:image/png;base64,") for s in page.images)
    # One run: no disagreement section; its maps: the image, occlusion and Grad-CAM.
    assert "Where the models disagree" not in " ".join(page.text)


def test_explain_refuses_runs_tested_on_other_examples(comparison, tmp_path):
    with pytest.raises(SpectroError, match="at least one run"):
        explain_runs({}, out=str(tmp_path))
    assert main(["explain", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not on PATH (.ci/run installs Debian's "
                                                             "chromium; apt-get install -y chromium)")
def test_the_report_renders_in_headless_chromium(comparison, tmp_path):

    r = comparison.explain(str(tmp_path / "why"), examples=1, progress=False)
    shot = tmp_path / "shot.png"
    done = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=1280,2400", f"--screenshot={shot}", f"file://{r.report_path}"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    # It loaded the page itself (an unreadable file would give Chromium's error page, which is not blank).
    dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          f"file://{r.report_path}"], capture_output=True, text=True, timeout=120, check=False)
    assert "<h1>Why one model beats another: svm, cnn</h1>" in dom.stdout
    assert dom.stdout.count('src="data:image/png;base64,') == len(FIGURES) + 1
    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert img.shape == (2400, 1280)
    # Not blank: text and figures give many dark pixels and a wide spread of grey levels.
    assert (img < 128).mean() > 0.01 and img.std() > 20


def test_masking_raw_images_with_the_run_mean_is_masking_normalised_ones_with_zero(comparison):
    # The training mean is what a mask holds: run.mean on the store's raw images, 0 on the normalised ones.
    # The CNN: on these 36 clips the SVM's inner search is perfect, so its temperature saturates its
    # probabilities at 1.0 and every occlusion map is 0 (nothing to compare).
    run = spectro.load_run(comparison.runs["cnn"][0], device="cpu")
    st = spectro.open_store(run.info["store"]["path"])
    rows = comparison.predictions["cnn"].rows[:3]
    raw = np.asarray(st.features[rows], dtype=np.float32)
    on_raw = occlusion_maps(run, raw, st.y[rows], fill=run.mean)
    on_normalised = occlusion_maps(run.classifier, run.normalise(raw), st.y[rows])
    np.testing.assert_allclose(on_raw, on_normalised, atol=1e-6)
    assert np.abs(on_raw).max() > 0
