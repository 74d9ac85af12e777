"""data: splits by fold, normalisation statistics, minibatches from the memory map, augmentation."""

import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from spectro.dataset.augment import Augment, gain_eq, mixup, time_roll
from spectro.dataset.feed import StoreImages, class_weights, epoch_batches, make_loader, norm_stats, normalise, shard
from spectro.dataset.splits import cv_splits, default_folds, make_split, nested_groups
from spectro.errors import SpectroError


def fake_store(folds, names=None, y=None):
    folds = np.asarray(folds, dtype=np.int64)
    meta = {"folds": {"names": names}} if names else {}
    return SimpleNamespace(folds=folds, fold_ids=sorted(set(folds.tolist())), meta=meta,
                           y=np.zeros(len(folds), np.int64) if y is None else np.asarray(y))


# --- splits ---------------------------------------------------------------------------

def test_default_folds_plain():
    st = fake_store([1, 2, 3, 4, 5] * 4)
    assert default_folds(st) == (5, None)  # highest fold tests; validation is a hold-out, not a fold
    assert default_folds(st, test_fold=1) == (1, None)
    assert default_folds(st, test_fold=3, val_fold=1) == (3, 1)
    assert default_folds(fake_store([1, 2, 1, 2])) == (2, None)


def test_default_folds_named_by_the_source():
    # Speech Commands: the lists name the folds.
    st = fake_store([1, 1, 2, 3, 1], names={"1": "training", "2": "validation", "3": "testing"})
    assert default_folds(st) == (3, 2)


@pytest.mark.parametrize("folds, kw, match", [
    ([1, 2, 3], {"test_fold": 7}, r"test fold 7 does not exist; the store has folds \[1, 2, 3\]"),
    ([1, 2, 3], {"val_fold": 0}, "validation fold 0 does not exist"),
    ([1, 2, 3], {"test_fold": 2, "val_fold": 2}, "must differ from the test fold"),
    ([1, 1, 1], {}, "single fold"),
])
def test_default_folds_errors(folds, kw, match):
    with pytest.raises(SpectroError, match=match):
        default_folds(fake_store(folds), **kw)


def test_make_split_partitions_rows_by_fold():
    folds = np.array([1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 3])
    s = make_split(fake_store(folds), test_fold=3, val_fold=2)
    assert (s.test_fold, s.val_fold) == (3, 2)
    assert set(folds[s.test]) == {3} and set(folds[s.val]) == {2} and set(folds[s.train]) == {1, 4, 5}
    everything = np.concatenate([s.train, s.val, s.test])
    assert sorted(everything.tolist()) == list(range(len(folds)))  # disjoint and complete
    roles = s.role_of_rows(len(folds))
    assert list(roles[s.test]) == ["test"] * 3 and list(roles[s.train]) == ["train"] * 6
    splits = cv_splits(fake_store(folds))
    assert [sp.test_fold for sp in splits] == [1, 2, 3, 4, 5]
    assert [sp.val_fold for sp in splits] == [None] * 5  # validation: a hold-out inside each split


def test_validation_holdout_is_group_aware_small_and_seeded():
    rng = np.random.default_rng(0)
    n = 400
    groups = rng.integers(0, 40, n).astype(str)  # 40 speakers
    y = rng.integers(0, 4, n)
    folds = (np.array([int(g) for g in groups]) % 5) + 1  # whole speakers per fold
    st = fake_store(folds, y=y)
    st.groups = groups
    s = make_split(st, test_fold=5, min_holdout=0)
    assert s.val_fold is None and s.val.size > 0
    train_g, val_g, test_g = (set(groups[r]) for r in (s.train, s.val, s.test))
    assert not (val_g & train_g) and not (val_g & test_g) and not (train_g & test_g)
    assert 0.08 <= len(val_g) / len(val_g | train_g) <= 0.2  # ~12.5 % of the training groups
    assert sorted(np.concatenate([s.train, s.val, s.test]).tolist()) == list(range(n))
    again = make_split(st, test_fold=5, min_holdout=0)
    assert np.array_equal(again.val, s.val)  # seeded
    other = make_split(st, test_fold=5, seed=1, min_holdout=0)
    assert not np.array_equal(other.val, s.val)
    assert make_split(st, test_fold=5, val_fraction=0).val.size == 0


def test_no_holdout_when_one_group_would_take_far_more_than_the_fraction():
    # Three sound sets, one per fold: the training folds hold two groups, and a
    # group-aware hold-out would take one of them, half the training data.
    groups = np.repeat(["fluid", "timgm", "freepats"], 40)
    y = np.tile(np.arange(4), 30)
    st = fake_store(np.repeat([1, 2, 3], 40), y=y)
    st.groups = groups
    s = make_split(st, test_fold=3)
    assert s.val.size == 0 and sorted(s.train.tolist()) == list(range(80))
    # Eight training groups: one of them is 12.5 %, and it is held out.
    groups8 = np.repeat([f"g{k}" for k in range(10)], 12)
    st8 = fake_store(np.repeat([1, 1, 1, 1, 2, 2, 2, 2, 3, 3], 12), y=np.tile(np.arange(4), 30))
    st8.groups = groups8
    s8 = make_split(st8, test_fold=3, min_holdout=0)
    assert len(set(groups8[s8.val])) == 1 and s8.val.size == 12


def test_no_holdout_smaller_than_min_holdout():
    # 320 training rows from 32 speakers: 12.5 % is about 40 clips, below the default of 100.
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(40), 10).astype(str)
    y = rng.integers(0, 4, 400)
    st = fake_store((np.arange(400) // 10) % 5 + 1, y=y)
    st.groups = groups
    s = make_split(st, test_fold=5)
    assert s.val.size == 0 and s.train.size == 320  # every training row trains
    held = make_split(st, test_fold=5, min_holdout=30)
    assert 30 <= held.val.size < 100 and held.train.size + held.val.size == 320
    assert make_split(st, test_fold=5, min_holdout=held.val.size + 1).val.size == 0  # the bound is the hold-out's size


def test_nested_groups_are_nested_stratified_and_seeded():
    groups = np.repeat(np.arange(60), 5).astype(str)  # 60 sources of 5 clips, each source one class
    y = np.repeat(np.arange(60) % 3, 5)
    kept = {f: nested_groups(y, groups, f, seed=0) for f in (0.1, 0.25, 0.5, 1.0)}
    assert kept[1.0].tolist() == list(range(300))
    for small, large in [(0.1, 0.25), (0.25, 0.5), (0.5, 1.0)]:
        assert set(kept[small]) < set(kept[large])  # each subset inside the larger one
    for f in (0.1, 0.25, 0.5):
        assert len(set(groups[kept[f]])) == int(np.ceil(f * 60))  # whole groups only
        shares = np.bincount(y[kept[f]], minlength=3) / len(kept[f])
        assert np.abs(shares - 1 / 3).max() <= 0.11  # every class keeps about its share
    assert np.array_equal(nested_groups(y, groups, 0.25, seed=0), kept[0.25])
    assert not np.array_equal(nested_groups(y, groups, 0.25, seed=1), kept[0.25])
    with pytest.raises(SpectroError, match="training fraction"):
        nested_groups(y, groups, 0.0)


def test_make_split_train_fraction_shrinks_training_only():
    groups = np.repeat(np.arange(50), 8).astype(str)
    y = np.repeat(np.arange(50) % 4, 8)
    st = fake_store(np.repeat(np.arange(50) % 5 + 1, 8), y=y)
    st.groups = groups
    full = make_split(st, test_fold=5, min_holdout=0)
    half = make_split(st, test_fold=5, min_holdout=0, train_fraction=0.5)
    assert np.array_equal(half.test, full.test)  # the same test fold for every point of a curve
    used = np.union1d(half.train, half.val)
    assert set(used) < set(np.union1d(full.train, full.val)) and len(set(groups[used])) == 20  # half of 40 groups
    assert half.val.size > 0 and not set(groups[half.val]) & set(groups[half.train])  # hold-out drawn inside


# --- normalisation --------------------------------------------------------------------

def test_norm_stats_known_answer_and_chunking():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((40, 1, 6, 9)) * np.arange(1, 7)[None, None, :, None] + 50).astype(np.float16)
    x[:, :, 5, :] = -80.0  # a frequency row at the dB floor everywhere: std 0 -> 1
    rows = np.arange(0, 40, 2)
    mean, std = norm_stats(x, rows, chunk_rows=3)
    ref = x[rows].astype(np.float64)
    np.testing.assert_allclose(mean, ref.mean(axis=(0, 3)), rtol=1e-6)
    np.testing.assert_allclose(std[:, :5], ref.std(axis=(0, 3))[:, :5], rtol=1e-5)
    assert std[0, 5] == 1.0 and mean[0, 5] == -80.0
    assert mean.shape == std.shape == (1, 6) and mean.dtype == np.float32
    # Rows outside `rows` (the test fold, say) do not count at all.
    x[1::2] = 1000
    np.testing.assert_array_equal(norm_stats(x, rows, chunk_rows=7)[0], mean)


def test_normalise_per_frequency():
    x = torch.arange(24, dtype=torch.float16).view(1, 1, 4, 6)
    mean, std = torch.tensor([[0.0, 1, 2, 3]]), torch.tensor([[1.0, 2, 4, 8]])
    out = normalise(x, mean, std)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out[0, 0, 2], (x[0, 0, 2].float() - 2) / 4)


def test_class_weights():
    w = class_weights(np.array([0, 0, 0, 1]), 3)  # class 2 absent
    np.testing.assert_allclose(w, [4 / 6, 4 / 2, 0])


# --- minibatches ----------------------------------------------------------------------

def memmap_images(tmp_path, n=30, shape=(1, 4, 5)):
    path = tmp_path / "f.npy"
    np.save(path, np.arange(n * np.prod(shape), dtype=np.float16).reshape(n, *shape))
    return np.load(path, mmap_mode="r")


def test_store_images_returns_a_batch_in_the_asked_order(tmp_path):
    feats = memmap_images(tmp_path)
    y = np.arange(30) % 3
    ds = StoreImages(feats, y, rows=np.array([10, 2, 25, 7]))
    x, labels = ds[np.array([2, 0, 3])]  # rows 25, 10, 7
    assert x.dtype == torch.float16 and x.shape == (3, 1, 4, 5)
    np.testing.assert_array_equal(x.numpy(), feats[[25, 10, 7]])
    assert labels.tolist() == [25 % 3, 10 % 3, 7 % 3]


def test_store_images_pickles_the_file_name_not_the_array(tmp_path):
    feats = memmap_images(tmp_path, n=200, shape=(1, 32, 32))
    ds = StoreImages(feats, np.zeros(200, np.int64), np.arange(200))
    blob = pickle.dumps(ds)
    assert len(blob) < feats.nbytes / 20  # a worker process gets a path, not 400 KB of images
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again[np.arange(5)][0].numpy(), ds[np.arange(5)][0].numpy())


def test_worker_processes_deliver_the_same_batches(tmp_path):
    feats = memmap_images(tmp_path)
    ds = StoreImages(feats, np.arange(30), np.arange(30))
    batches = epoch_batches(30, 8, epoch=0, seed=1)
    a = [y.tolist() for _, y in make_loader(ds, batches, workers=0)]
    b = [y.tolist() for _, y in make_loader(ds, batches, workers=2)]
    assert a == b == [list(bt) for bt in batches]


def test_epoch_batches_is_a_seeded_permutation():
    one = epoch_batches(23, 5, epoch=3, seed=0)
    assert [len(b) for b in one] == [5, 5, 5, 5, 3]
    assert sorted(np.concatenate(one).tolist()) == list(range(23))
    again = epoch_batches(23, 5, epoch=3, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(one, again))
    assert not np.array_equal(np.concatenate(one), np.concatenate(epoch_batches(23, 5, epoch=4, seed=0)))
    assert [len(b) for b in epoch_batches(23, 5, epoch=0, seed=0, drop_last=True)] == [5] * 4


def test_epoch_batches_share_an_epoch_between_ranks():
    ranks = [epoch_batches(23, 4, epoch=1, seed=0, rank=r, world_size=2) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1])  # equal steps, or DDP would hang
    seen = np.concatenate([np.concatenate(r) for r in ranks])
    assert set(seen.tolist()) == set(range(23)) and seen.size == 24  # padded by one repeat
    assert shard(np.arange(7), 1, 2).tolist() == [1, 3, 5]  # evaluation: no padding


# --- augmentation ---------------------------------------------------------------------

def test_time_roll_rolls_each_example_along_time_only():
    torch.manual_seed(0)
    x = torch.arange(2 * 3 * 10, dtype=torch.float32).view(2, 1, 3, 10).repeat(4, 1, 1, 1)  # (8, 1, 3, 10)
    out = time_roll(x, 0.3)
    assert out.shape == x.shape
    for i in range(8):
        shift = [k for k in range(10) if torch.equal(out[i], torch.roll(x[i], k, dims=-1))]
        assert len(shift) == 1 and min(shift[0], 10 - shift[0]) <= 3
    assert len({int(torch.argmin(out[i, 0, 0])) for i in range(8)}) > 1  # offsets differ per example
    assert torch.equal(time_roll(x, 0.0), x)


def test_specaugment_masks_with_the_mean():
    torch.manual_seed(0)
    x = torch.ones(16, 1, 32, 40)
    aug = Augment((1, 32, 40), specaugment=True)
    out = aug(x)
    assert out.shape == x.shape
    zero = out == 0
    assert zero.any() and not zero.all()
    # Masked cells are whole frequency rows or time columns, each up to 1/8 of the axis.
    assert int(zero[:, 0].all(dim=2).sum(dim=1).max()) <= 2 * 4
    assert torch.equal(Augment((1, 32, 40))(x), x)  # nothing asked, nothing changed


def test_gain_eq_offsets_are_smooth_bounded_and_differ_per_example():
    torch.manual_seed(0)
    d = gain_eq(500, 64, 6.0)
    assert d.shape == (500, 1, 64, 1)
    d = d[:, 0, :, 0]
    assert float(d.abs().max()) <= 12.0 + 1e-5  # gain and curve each within 6 dB
    assert float(d.abs().max()) > 6.0  # ... and both are drawn: the sum goes past one of them
    gains = d.mean(dim=1)
    assert float(gains.std()) > 1.0  # a gain per example, not one for the batch
    curves = d - gains[:, None]
    assert float(curves.std(dim=1).mean()) > 0.5  # a curve over frequency, not only a gain
    # Smooth: neighbouring bands differ by a small share of the curve's range (no notches).
    step = (curves[:, 1:] - curves[:, :-1]).abs().max(dim=1).values
    span = curves.amax(dim=1) - curves.amin(dim=1)
    assert bool((step <= 0.25 * span + 1e-6).all())
    torch.manual_seed(0)
    assert torch.equal(gain_eq(500, 64, 6.0)[:, 0, :, 0], d)  # seeded: a resumed run repeats it


def test_gain_eq_in_normalised_space_is_decibels_added_before_normalising():
    torch.manual_seed(1)
    raw = torch.randn(8, 1, 16, 20) * 10 - 40  # dB images
    mean, std = raw.mean(dim=(0, 3)), raw.std(dim=(0, 3)) + torch.linspace(0.5, 3, 16)[None, :]  # (1, 16)
    aug = Augment((1, 16, 20), gain_eq=6.0, std=std)
    torch.manual_seed(5)
    out = aug(normalise(raw, mean, std))
    torch.manual_seed(5)
    offsets = gain_eq(8, 16, 6.0)  # the same draw, in dB
    torch.testing.assert_close(out, normalise(raw + offsets, mean, std), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out, normalise(raw, mean, std))
    with pytest.raises(ValueError, match="std"):
        Augment((1, 16, 20), gain_eq=6.0)


def test_mixup_is_a_convex_combination():
    torch.manual_seed(0)
    x, y = torch.randn(6, 1, 4, 4), torch.arange(6)
    mixed, ya, yb, lam = mixup(x, y, 0.4)
    assert 0 <= lam <= 1 and torch.equal(ya, y)
    perm = yb  # labels are 0..5, so y[perm] is perm itself
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[perm])
