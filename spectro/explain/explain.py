"""``explain_run`` and ``explain_runs``: why one model beats another, as figures and one HTML page.

For each model (a run) tested on the same examples of one store:

* where it looks: occlusion importance over frequency and time
  (:mod:`~spectro.explain.occlusion`), and for a few test images its
  occlusion map and, for a network, its Grad-CAM map (:mod:`~spectro.explain.gradcam`);
* what it embeds: train and test examples in 2-D, and how strongly they
  cluster by group rather than class (:mod:`~spectro.explain.embeddings`);
* what it gets wrong: its most confident mistakes, and the examples on
  which the models disagree (:mod:`~spectro.explain.errors`).

Written into ``out``: ``importance.png``, ``maps.png``, ``embeddings.png``,
``errors.png``, ``explain.json`` (the numbers) and ``report.html`` (all of
it, self-contained). Occlusion needs one prediction per mask and image, so
the profiles use at most ``profile_examples`` test images (stratified,
seeded) and the embeddings at most ``embed_examples`` training images.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from spectro.config import SEED
from spectro.explain.defaults import EXPLAIN_EXAMPLES, EXPLAIN_PROJECTIONS
from spectro.dataset.splits import rows_of_ids
from spectro.errors import SpectroError
from spectro.explain.embeddings import embed, group_minus_class, project
from spectro.explain.errors import confident_errors, disagreements, discordant_pairs
from spectro.explain.figures import plot_embeddings, plot_errors, plot_importance, plot_maps
from spectro.explain.gradcam import grad_cam, network_of
from spectro.explain.occlusion import band_importance, image_axes, occlusion_maps
from spectro.explain.report import Section, html_table, write_html
from spectro.plots.figures import png_bytes
from spectro.signals.store import Store, open_store
from spectro.training.run import Run, load_run, read_split
from spectro.utils.console import printer
from spectro.utils.files import write_bytes, write_json

__all__ = ["EMBED_EXAMPLES", "ERRORS_PER_MODEL", "PROFILE_EXAMPLES", "Explanation", "explain_run", "explain_runs"]

#: Test images the occlusion profiles average over, and training images embedded (at most; seeded picks).
PROFILE_EXAMPLES = 48
EMBED_EXAMPLES = 400
#: Confident mistakes shown per model.
ERRORS_PER_MODEL = 4
FIGURES = ("importance", "maps", "embeddings", "errors")


@dataclass
class Explanation:
    """What :func:`explain_runs` found; the figures and report.html lie in ``out``.

    Attributes
    ----------
    models, labels : list of str
    hz, seconds : np.ndarray [shape=(F,)], [shape=(T,)]
        The image axes.
    over_frequency, over_time : dict of model -> np.ndarray [shape=(F,)], [shape=(T,)]
        Mean occlusion importance (drop in the true class's probability).
    group_vs_class : dict of model -> float
        Silhouette by group minus by class of the test embeddings; of the
        training embeddings when the test examples come from one group (a
        leave-one-speaker-out fold); NaN when neither has two groups.
    group_vs_class_on : str
        ``"test"`` or ``"train"``: which examples ``group_vs_class`` was measured on.
    accuracy : dict of model -> float
        On the test examples explained.
    errors, disagreements, pairs : pandas.DataFrame
        See :mod:`spectro.explain.errors`; ``position`` indexes ``test_rows``.
    test_rows : np.ndarray
        Store rows of the test examples.
    out : str
    figures : dict of name -> path
    """

    models: list[str]
    labels: list[str]
    hz: np.ndarray
    seconds: np.ndarray
    over_frequency: dict[str, np.ndarray]
    over_time: dict[str, np.ndarray]
    group_vs_class: dict[str, float]
    accuracy: dict[str, float]
    errors: pd.DataFrame
    disagreements: pd.DataFrame
    pairs: pd.DataFrame
    test_rows: np.ndarray
    out: str
    figures: dict[str, str] = field(default_factory=dict)
    group_vs_class_on: str = "test"

    @property
    def report_path(self) -> str:
        return os.path.join(self.out, "report.html")

    @property
    def table(self) -> pd.DataFrame:
        """One row per model: accuracy, the largest drop of its frequency importance, where it peaks and
        its half-maximum band (Hz), when in the clip (s), group-vs-class silhouette, wrong test examples.

        An attribute like :attr:`spectro.Comparison.table`; ``table()``, as it was once called, gives the same.
        A model whose importance is nowhere above 0 (occluding changes nothing) has no peak or band (NaN).
        """
        rows = []
        for m in self.models:
            f, t = self.over_frequency[m], self.over_time[m]
            lo, hi = _half_max_band(f)
            looked = bool(f.max() > 0)
            rows.append({"model": m, "accuracy": self.accuracy[m], "largest drop": float(f.max()),
                         "peak Hz": round(float(self.hz[np.argmax(f)])) if looked else np.nan,
                         "band from Hz": round(float(self.hz[lo])) if looked else np.nan,
                         "band to Hz": round(float(self.hz[hi])) if looked else np.nan,
                         "peak s": float(self.seconds[np.argmax(t)]) if t.max() > 0 else np.nan,
                         "group - class silhouette": self.group_vs_class[m],
                         "silhouette of": self.group_vs_class_on,
                         "wrong": round((1 - self.accuracy[m]) * len(self.test_rows))})
        return _Table(rows)


class _Table(pd.DataFrame):
    """A DataFrame that may also be called: ``Explanation.table()`` was a method, and notebooks call it."""

    @property
    def _constructor(self):
        return pd.DataFrame  # what pandas builds from it (round, head, ...) is a plain DataFrame

    def __call__(self) -> pd.DataFrame:
        return pd.DataFrame(self)


def _half_max_band(curve: np.ndarray) -> tuple[int, int]:
    """First and last index of the contiguous run around the peak where ``curve`` >= half its peak."""
    peak = int(np.argmax(curve))
    half = curve[peak] / 2
    lo = hi = peak
    while lo > 0 and curve[lo - 1] >= half:
        lo -= 1
    while hi < len(curve) - 1 and curve[hi + 1] >= half:
        hi += 1
    return lo, hi


def _stratified(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """At most ``n`` positions of y, about equally many per class (seeded), sorted."""
    rng = np.random.default_rng(seed)
    by_class = [rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]
    picked: list[int] = []
    depth = 0
    while len(picked) < min(n, len(y)):
        picked += [int(p[depth]) for p in by_class if depth < len(p)][: min(n, len(y)) - len(picked)]
        depth += 1
    return np.sort(np.asarray(picked, dtype=np.int64))


def explain_run(run: str | Run, *, store: str | Store | None = None, out: str | None = None,
                examples: int = EXPLAIN_EXAMPLES, method: str = EXPLAIN_PROJECTIONS[0], device: str | None = None,
                progress: bool = True) -> Explanation:
    """Explain one trained run on its test examples; write the figures and ``report.html`` into ``out``.

    ``out`` defaults to ``RUN/explain``; ``store`` to the run's own store. See :func:`explain_runs`.
    """
    run = run if isinstance(run, Run) else load_run(run, device=device)
    name = run.info.get("model", os.path.basename(os.path.normpath(run.path)))
    return explain_runs({name: run}, store=store, out=out or os.path.join(run.path, "explain"), examples=examples,
                        method=method, device=device, progress=progress,
                        title=f"Why {name} decides as it does: {os.path.basename(os.path.normpath(run.path))}")


def explain_runs(runs: Mapping[str, str | Run], *, store: str | Store | None = None, out: str,
                 examples: int = EXPLAIN_EXAMPLES, method: str = EXPLAIN_PROJECTIONS[0], device: str | None = None,
                 seed: int = SEED, title: str = "Why one model beats another", verdict: str = "",
                 table: pd.DataFrame | None = None, figures: Sequence[tuple[str, bytes | str]] = (),
                 progress: bool = True) -> Explanation:
    """Explain models tested on the same examples of one store, side by side.

    Parameters
    ----------
    runs : dict of model name -> run directory or Run
        Every run must have the same test examples (a comparison's runs of one fold).
    store : str or Store, optional
        Default: the store the first run was trained on.
    out : str
        Folder for the figures, explain.json and report.html.
    examples : int
        Test images drawn with each model's maps (spread over the classes).
    method : {"pca", "tsne"}
        2-D projection of the embeddings.
    verdict, table, figures
        A comparison's verdict, table and figures ((alt text, PNG bytes or the path of a PNG file)),
        shown at the top of the report.

    Raises
    ------
    SpectroError
        No runs, a store whose features differ from a run's, or runs tested on different examples.
    """
    say = printer(progress, "explain: ")
    if not runs:
        raise SpectroError("explain needs at least one run")
    if examples < 1:
        raise SpectroError(f"--examples must be at least 1, got {examples}")
    if method not in EXPLAIN_PROJECTIONS:
        raise SpectroError(f"unknown projection {method!r}; use one of {', '.join(EXPLAIN_PROJECTIONS)}")
    loaded = {m: r if isinstance(r, Run) else load_run(r, device=device) for m, r in runs.items()}
    first = next(iter(loaded.values()))
    st = store if isinstance(store, Store) else open_store(store or first.info["store"]["path"])
    test_rows, train_rows = _rows(loaded, st)
    cfg = st.config
    labels = list(st.labels)
    y = st.y[test_rows]
    raw = np.asarray(st.features[test_rows], dtype=np.float32)  # (N, C, F, T)
    hz, seconds = image_axes(cfg)
    shown = _stratified(y, examples, seed)
    profiled = _stratified(y, PROFILE_EXAMPLES, seed)
    embedded = train_rows[_stratified(st.y[train_rows], EMBED_EXAMPLES, seed)]

    proba, over_f, over_t, maps, points, scores, accuracy = {}, {}, {}, {}, {}, {}, {}
    # One test group (a leave-one-speaker-out fold) says nothing about groups: measure on the training examples.
    scored_on = "test" if np.unique(st.groups[test_rows]).size >= 2 else "train"
    for m, run in loaded.items():
        say(f"{m}: probabilities, occlusion, embeddings")
        clf = run.classifier
        X = run.normalise(raw)  # what the classifier reads; the training mean is 0 there
        proba[m] = run.classifier.predict_proba(X)
        accuracy[m] = float(np.mean(proba[m].argmax(axis=1) == y))
        over_f[m], over_t[m] = band_importance(clf, X[profiled], y[profiled])
        maps[f"{m} occlusion"] = occlusion_maps(clf, X[shown], y[shown])
        if network_of(clf) is not None:
            maps[f"{m} Grad-CAM"] = grad_cam(clf, X[shown], y[shown])
        z_test = embed(clf, X)
        z_train = embed(clf, run.normalise(np.asarray(st.features[embedded], dtype=np.float32)))
        points[m] = project(z_train, z_test, method=method, seed=seed)
        if scored_on == "test":
            scores[m] = group_minus_class(z_test, y, st.groups[test_rows])
        else:
            scores[m] = group_minus_class(z_train, st.y[embedded], st.groups[embedded])

    sources = st.paths[test_rows]
    result = Explanation(
        models=list(loaded), labels=labels, hz=hz, seconds=seconds, over_frequency=over_f, over_time=over_t,
        group_vs_class=scores, accuracy=accuracy,
        errors=confident_errors(proba, y, labels=labels, sources=sources, k=ERRORS_PER_MODEL),
        disagreements=disagreements(proba, y, labels=labels, sources=sources) if len(loaded) > 1 else pd.DataFrame(),
        pairs=discordant_pairs(proba, y), test_rows=test_rows, out=out, group_vs_class_on=scored_on)
    os.makedirs(out, exist_ok=True)
    figs = {
        "importance": plot_importance(over_f, hz, over_time=over_t, seconds=seconds, pixels=cfg.is_image),
        "maps": plot_maps(raw[shown, 0], maps, cfg,
                          titles=[f"{labels[y[i]]}: {os.path.basename(str(sources[i]))}" for i in shown]),
        "embeddings": plot_embeddings(points, train_classes=st.y[embedded], test_classes=y,
                                      train_groups=st.groups[embedded], test_groups=st.groups[test_rows],
                                      labels=labels, scores=scores, method=method),
        "errors": plot_errors(result.errors, raw[:, 0], cfg),
    }
    pngs = {}
    for name, fig in figs.items():  # rendered once: the same bytes are the file and the report's image
        path = os.path.join(out, f"{name}.png")
        pngs[name] = png_bytes(fig)
        write_bytes(path, pngs[name])
        result.figures[name] = path
    write_json(os.path.join(out, "explain.json"), {
        "models": result.models, "test_examples": int(test_rows.size), "accuracy": accuracy,
        "group_vs_class": {m: (None if np.isnan(v) else v) for m, v in scores.items()},
        "group_vs_class_on": scored_on,
        "table": [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
                  for row in result.table.to_dict(orient="records")],  # NaN (one test group) -> null
        "over_frequency": {m: v.tolist() for m, v in over_f.items()}, "hz": hz.tolist(),
        "over_time": {m: v.tolist() for m, v in over_t.items()}, "seconds": seconds.tolist()})
    write_html(result.report_path, title=title, verdict=verdict,
               sections=_sections(result, pngs, table, figures, method), footer=f"store {st.path}; written by spectro")
    say(f"report in {result.report_path}")
    return result


def _rows(runs: Mapping[str, Run], st: Store) -> tuple[np.ndarray, np.ndarray]:
    """Test rows shared by every run, and the first run's training rows."""
    test = train = None
    for m, run in runs.items():
        if run.feature_config.fingerprint() != st.config.fingerprint():
            raise SpectroError(f"{m} ({run.path}) was trained on other features than store {st.path}")
        split = read_split(run.path)
        rows = rows_of_ids(st, split["test"], what=f"test examples of {run.path}")
        if test is None:
            test, train = rows, rows_of_ids(st, split["train"], what=f"training examples of {run.path}")
        elif not np.array_equal(rows, test):
            raise SpectroError(f"{m} ({run.path}) was tested on other examples than {next(iter(runs))}; "
                               "explain compares models on one test fold")
    if test is None or test.size == 0:
        raise SpectroError("the runs have no test examples to explain")
    return test, train


def _read_png(path: str) -> bytes:
    """A figure handed on as the path of a PNG an earlier step wrote (compare's figure, the learning curve)."""
    with open(path, "rb") as f:
        return f.read()


def _sections(r: Explanation, pngs: dict[str, bytes], table: pd.DataFrame | None,
              figures: Sequence[tuple[str, bytes | str]], method: str) -> list[Section]:
    sections = []
    if table is not None or figures:
        given = [(caption, png if isinstance(png, bytes) else _read_png(png)) for caption, png in figures]
        sections.append(Section("Comparison", tables=[html_table(table)] if table is not None else [],
                                figures=given))
    sections += [
        Section("What each model uses", f"{len(r.test_rows)} test examples of {len(r.labels)} classes. Importance: "
                "the drop in the true class's probability when a frequency band (or an instant) is masked with "
                "the training mean, as SpecAugment masks. Band: where the importance stays above half its peak. "
                "Group - class silhouette > 0: the model's embedding groups clips by their group (speaker, "
                "kit, recording) more than by their class; measured on the test clips, or on the training clips "
                "(silhouette of: train) when the test clips come from one group.", tables=[html_table(r.table)],
                figures=[("importance over frequency and time, one line per model", pngs["importance"])]),
        Section("Where each model looks in single test images", "Left: the image. Then per model its occlusion map "
                "(red: masking that patch lowers the true class) and, for networks, Grad-CAM on the last "
                "convolutional block.", figures=[("test images with each model's maps", pngs["maps"])]),
        Section("Embeddings", f"{method.upper()} of each model's embedding (networks: pooled last feature map; SVM: "
                "standardised summary features) of training and test examples (outlined).",
                figures=[("embeddings, one panel per model", pngs["embeddings"])]),
        _mistakes_section(r, pngs),
    ]
    if len(r.models) > 1:
        sections.append(_disagreement_section(r))
    return sections


def _mistakes_section(r: Explanation, pngs: dict[str, bytes]) -> Section:
    if not len(r.errors):  # a line, not an empty figure
        return Section("Most confident mistakes", f"None: every model got all {len(r.test_rows)} test examples "
                       "right.")
    return Section("Most confident mistakes", tables=[html_table(r.errors)],
                   figures=[("most confident mistakes per model", pngs["errors"])])


def _disagreement_section(r: Explanation) -> Section:
    text = ("Pairs: the test examples only one model of the pair gets right (what McNemar's test counts); then "
            "every example on which the models do not all predict the same class, the most often wrong first.")
    if not len(r.disagreements):  # no table that is only a header
        return Section("Where the models disagree", f"Nowhere: the models predict the same class for all "
                       f"{len(r.test_rows)} test examples.", tables=[html_table(r.pairs)] if len(r.pairs) else [])
    return Section("Where the models disagree", text,
                   tables=[html_table(r.pairs), html_table(r.disagreements.head(50))])
