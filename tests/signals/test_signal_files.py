"""MATLAB .mat (v5 and v7.3) and CSV/TSV files of samples: what is read, and every refusal with its reason."""

import numpy as np
import pytest
from input_files import cwru, mat_v5, mat_v73

from spectro.config import FeatureConfig
from spectro.errors import BadInput
from spectro.signals import matfiles
from spectro.signals.images import SignalRef, read_signal
from spectro.signals.matfiles import mat_arrays, read_mat
from spectro.signals.tables import read_table

Y = np.sin(np.arange(3000) / 7.0).astype(np.float64)


@pytest.mark.parametrize("v73", [False, True])
def test_a_case_western_file_gives_the_drive_end_signal_never_the_rpm(tmp_path, v73):
    path = cwru(tmp_path / "97.mat", Y, v73=v73)
    assert matfiles.is_hdf5(path) is v73
    arrays = mat_arrays(path)
    assert arrays["X097_DE_time"][0] == (3000, 1) and arrays["X097RPM"][0] == (1, 1)
    np.testing.assert_allclose(read_mat(path, key="_DE_time$"), Y.astype(np.float32))
    np.testing.assert_allclose(read_mat(path, key="FE"), 0.5 * Y[::-1].astype(np.float32))
    with pytest.raises(BadInput, match=r"2 signals in the \.mat file \(X097_DE_time, X097_FE_time\): pick one "
                                       r"with --mat-key REGEX \(variables: .*X097RPM 1x1"):
        read_mat(path)  # the scalar rpm is not a third candidate
    with pytest.raises(BadInput, match=r"no variable matches --mat-key '_BA_time' \(variables: .*X097_DE_time 3000x1"):
        read_mat(path, key="_BA_time")
    with pytest.raises(BadInput, match=r"matches no numeric 1-D array, only X097RPM 1x1"):
        read_mat(path, key="RPM")
    with pytest.raises(BadInput, match=r"matches 2 signals"):
        read_mat(path, key="_time")


@pytest.mark.parametrize("writer", [mat_v5, mat_v73])
def test_one_vector_beside_a_scalar_needs_no_key_and_row_vectors_count(tmp_path, writer):
    path = writer(tmp_path / "a.mat", {"acc": Y[None, :], "rpm": np.array([[1750.0]])})  # a (1, n) row vector
    np.testing.assert_allclose(read_mat(path), Y.astype(np.float32))


@pytest.mark.parametrize("writer", [mat_v5, mat_v73])
@pytest.mark.parametrize("arrays,reason", [
    ({"rpm": np.array([[1797.0]])}, "no numeric 1-D array in the .mat file (variables: rpm 1x1)"),
    ({"note": np.array("hello")}, "no numeric 1-D array in the .mat file"),
    ({"m": np.ones((64, 600))}, "no numeric 1-D array in the .mat file (variables: m 64x600)"),
])
def test_mat_files_without_a_signal_are_refused_with_their_variables(tmp_path, writer, arrays, reason):
    with pytest.raises(BadInput) as err:
        read_mat(writer(tmp_path / "x.mat", arrays))
    assert str(err.value).startswith(reason)


def test_a_matrix_picked_by_key_is_the_wrong_rank(tmp_path):
    path = mat_v5(tmp_path / "m.mat", {"m": np.ones((64, 600))})
    with pytest.raises(BadInput, match=r"--mat-key 'm' matches no numeric 1-D array, only m 64x600 \(wrong rank"):
        read_mat(path, key="m")


def test_v73_without_h5py_says_what_it_needs(tmp_path, monkeypatch):
    path = cwru(tmp_path / "97.mat", Y, v73=True)
    monkeypatch.setattr(matfiles, "h5py", None)
    with pytest.raises(BadInput, match="MATLAB v7.3 .*h5py is not installed: pip install h5py"):
        read_mat(path, key="DE")
    v5 = cwru(tmp_path / "98.mat", Y)  # v5 files still read
    assert read_mat(v5, key="DE").shape == (3000,)


def test_not_a_mat_file(tmp_path):
    (tmp_path / "x.mat").write_bytes(b"\x00" * 300)
    with pytest.raises(BadInput, match="cannot read .mat file"):
        read_mat(str(tmp_path / "x.mat"))


def test_a_mat_signal_is_read_at_the_given_rate_or_resampled_from_its_own(tmp_path):
    path = cwru(tmp_path / "97.mat", Y)
    cfg = FeatureConfig(sample_rate=1000, duration=1.0, n_fft=64, hop_length=16, n_mels=16, mat_key="DE")
    assert read_signal(SignalRef(path), cfg).shape == (3000,)  # at the target rate: as it is
    assert read_signal(SignalRef(path, sample_rate=2000), cfg).shape == (1500,)  # a manifest's 2 kHz: resampled


def test_csv_one_column_with_and_without_header(tmp_path):
    (tmp_path / "a.csv").write_text("\n".join(f"{v:.6f}" for v in Y[:500]) + "\n")
    (tmp_path / "b.csv").write_text("acc\n" + "\n".join(f"{v:.6f}" for v in Y[:500]) + "\n")
    for name in ("a.csv", "b.csv"):
        np.testing.assert_allclose(read_table(str(tmp_path / name)), Y[:500], atol=1e-6)


def test_csv_columns_mean_first_name_index_and_time_left_out(tmp_path):
    x, z = Y[:400], 3 * Y[:400]
    rows = "\n".join(f"{i / 1000:.3f},{a:.6f},{b:.6f}" for i, (a, b) in enumerate(zip(x, z)))
    (tmp_path / "s.csv").write_text("time,ax,az\n" + rows + "\n")
    path = str(tmp_path / "s.csv")
    np.testing.assert_allclose(read_table(path), (x + z) / 2, atol=1e-6)  # time is not averaged in
    np.testing.assert_allclose(read_table(path, channels="first"), x, atol=1e-6)
    np.testing.assert_allclose(read_table(path, channels="az"), z, atol=1e-6)
    np.testing.assert_allclose(read_table(path, column="az"), z, atol=1e-6)
    np.testing.assert_allclose(read_table(path, column="1"), x, atol=1e-6)
    with pytest.raises(BadInput, match=r"no column 'ay' \(columns: time, ax, az\)"):
        read_table(path, column="ay")


def test_tsv_and_semicolons(tmp_path):
    (tmp_path / "s.tsv").write_text("a\tb\n" + "\n".join(f"{v:.5f}\t{2 * v:.5f}" for v in Y[:100]))
    (tmp_path / "s.csv").write_text("a;b\n" + "\n".join(f"{v:.5f};{2 * v:.5f}" for v in Y[:100]))
    for name in ("s.tsv", "s.csv"):
        np.testing.assert_allclose(read_table(str(tmp_path / name), column="b"), 2 * Y[:100], atol=1e-5)


@pytest.mark.parametrize("text,reason", [
    ("acc\n0.1\n0.2\noops\n0.3\n", "text in the column of samples 'acc': 'oops' at line 4 (1 such cells)"),
    ("", "no samples"),
    ("acc\n", "no samples"),
])
def test_csv_refusals(tmp_path, text, reason):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(BadInput) as err:
        read_table(str(tmp_path / "bad.csv"))
    assert str(err.value).startswith(reason)
