"""A long prediction in segments (table, CSV, JSON) and a timeline with a colour legend and no text per window,
readable at 3 and at 3,000 windows (issue 31, R7)."""

import csv
import io
import json

import numpy as np
import pytest

from spectro.config import FeatureConfig
from spectro.inference.predict import FilePrediction
from spectro.inference.segments import format_segments, merge_segments
from spectro.plots.timeline import timeline_figure

LABELS = ["normal", "inner_race", "outer_race"]


def _windows(classes, *, hop=1.0, length=1.0):
    """One-hot-ish window probabilities for a sequence of class ids, ``hop`` s apart."""
    k = len(classes)
    proba = np.full((k, 3), 0.05)
    proba[np.arange(k), classes] = 0.9
    starts = np.arange(k) * hop
    return starts, starts + length, proba


def test_runs_of_equal_windows_are_merged_into_segments():
    starts, ends, proba = _windows([0] * 150 + [1] * 150)
    segs = merge_segments(starts, ends, proba, LABELS)
    assert [(s["start"], s["end"], s["label"], s["windows"]) for s in segs] == [
        (0.0, 150.0, "normal", 150), (150.0, 300.0, "inner_race", 150)]
    assert segs[0]["probability"] == pytest.approx(0.9)
    assert format_segments(segs) == "0-150 s normal, 150-300 s inner_race"
    # Overlapping windows (hop half a window): a segment ends where the next starts; the last with its window.
    starts, ends, proba = _windows([0, 0, 2, 2, 2], hop=0.5)
    assert [(s["start"], s["end"]) for s in merge_segments(starts, ends, proba, LABELS)] == [(0, 1.0), (1.0, 3.0)]
    assert "and 4 more segments" in format_segments(merge_segments(*_windows([0, 1] * 12), LABELS))  # 24, 20 shown


def test_the_table_csv_and_json_carry_the_segments():
    starts, ends, proba = _windows([0] * 3 + [1] * 2)
    r = FilePrediction(source="rec.wav", labels=LABELS, proba=proba.mean(axis=0), starts=starts, ends=ends,
                       window_proba=proba, seconds=5.0, windowed=True)
    assert r.table_lines()[1] == "    segments: 0-3 s normal, 3-5 s inner_race"
    assert [(s["start"], s["end"], s["label"]) for s in r.to_dict()["segments"]] == [
        (0, 3, "normal"), (3, 5, "inner_race")]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=FilePrediction.CSV_COLUMNS, restval="")
    w.writeheader()
    w.writerows(r.csv_rows())
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert json.loads(rows[0]["segments"]) == [[0.0, 3.0, "normal"], [3.0, 5.0, "inner_race"]]
    assert all(row["segments"] == "" for row in rows[1:])  # the window rows


@pytest.mark.parametrize("k", [3, 3000])
def test_the_timeline_has_a_legend_and_no_text_per_window(k):
    cfg = FeatureConfig(sample_rate=8000, duration=1.0, n_fft=256, hop_length=128, n_mels=32)
    classes = [0] * (k // 3) + [1] * (k // 3) + [2] * (k - 2 * (k // 3))
    starts, ends, proba = _windows(classes)
    frames = int(ends[-1] * cfg.sample_rate / cfg.hop_length)
    segs = merge_segments(starts, ends, proba, LABELS)
    fig = timeline_figure(np.zeros((32, frames)), cfg, starts=starts, ends=ends, window_proba=proba,
                          labels=LABELS, title="rec.wav", segments=segs)
    strip = fig.axes[1]
    assert len(strip.texts) <= len(segs) == 3  # a segment's name where it fits, never one per window
    [legend] = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == LABELS
    fig.canvas.draw()  # the legend and the labels fit in the figure, not cut at its edge
    box = fig.bbox
    for artist in [legend, *strip.texts]:
        extent = artist.get_window_extent()
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1 and box.y0 <= extent.y0
