"""Models: every registered net through forward/backward, faithfulness to the
paper and to torchvision, the pretrained adaptation, and the one classifier
interface (train, predict, save, load, refuse unsafe files) for nets and SVM."""

import json
import os
import pickle
import shlex
import subprocess
import sys

import numpy as np
import pytest
import skops.io
import torch
import torchvision
from torch import nn

from spectro.errors import SpectroError
from spectro.models import (
    BasicBlock,
    Bottleneck,
    SpectrogramFeatures,
    SVMClassifier,
    build,
    count_flops,
    count_params,
    describe_models,
    list_models,
    register_model,
)
from spectro.training.classifier import NetClassifier, load_classifier, make_classifier

NETS = list_models("net")
DEPTHS = (18, 34, 50, 101, 152)
TORCHVISION_PARAMS = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032,
                      101: 44_549_160, 152: 60_192_808}
# He et al. 2015, Table 1: multiply-adds at 224x224, in 10^9.
PAPER_GMACS = {18: 1.8, 34: 3.6, 50: 3.8, 101: 7.6, 152: 11.3}
# He et al. 2015, Table 6: parameters of the CIFAR-10 nets, in millions (rounded).
PAPER_SMALL_MPARAMS = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}


def meta(name, *args, **kwargs):
    """A model with shapes but no storage: free to build and to count FLOPs on."""
    with torch.device("meta"):
        return build(name, *args, **kwargs)


def tones(n, *, freq=16, time=24, seed=0, labels=("low", "mid", "high")):
    """Separable images (N, 1, F, T): class k has a tone in bin 3 + 4k, under unit noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(labels)
    X = rng.normal(0.0, 1.0, (n, 1, freq, time)).astype(np.float16)
    X[np.arange(n), 0, 3 + 4 * y, :] += 1.5
    return X, np.asarray(labels)[y]


def as_memmap(tmp_path, X):
    path = tmp_path / "features.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=X.dtype, shape=X.shape)
    out[:] = X
    out.flush()
    return np.load(path, mmap_mode="r")


# --- every registered network -------------------------------------------------------


@pytest.mark.parametrize("name", NETS)
def test_forward_backward(name):
    torch.manual_seed(0)
    model = build(name, num_classes=7)
    logits = model(torch.randn(2, 1, 64, 101))
    assert logits.shape == (2, 7)
    assert not torch.isnan(logits).any()
    logits.square().sum().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    model.eval()  # the smallest input the contract promises
    assert model(torch.randn(1, 1, 8, 8)).shape == (1, 7)
    embedding = model.forward_head(model.forward_features(torch.randn(2, 1, 32, 40)),
                                   pre_logits=True)
    assert embedding.shape == (2, model.num_features)


def test_unknown_name_lists_valid_names():
    with pytest.raises(SpectroError) as err:
        build("resnet19", num_classes=3)
    message = str(err.value)
    assert "\n" not in message and "resnet19" in message
    assert all(name in message for name in list_models())


def test_registry_refuses_duplicates_unknown_names_and_bad_options():
    with pytest.raises(SpectroError, match="already registered"):
        register_model("resnet18")(lambda num_classes, in_channels=1: None)
    with pytest.raises(SpectroError, match="not in spectro.models.catalog"):
        register_model("resnet19")(lambda num_classes, in_channels=1: None)
    with pytest.raises(SpectroError, match="not a network"):  # the registry holds what build() builds
        register_model("svm")(lambda num_classes, in_channels=1: None)
    with pytest.raises(SpectroError, match="stm"):
        build("resnet18", 3, stm="small")
    with pytest.raises(SpectroError, match="stem"):
        build("resnet18", 3, stem="tiny")
    with pytest.raises(SpectroError, match="not a neural network"):
        build("svm", 3)


def test_every_catalog_name_has_a_builder_and_the_catalog_needs_no_torch():
    from spectro.models.registry import registered

    assert registered() == list_models(kind="net")
    code = ("import sys; import spectro.models.catalog as c; print(len(c.list_models()), "
            "[m for m in ('torch', 'sklearn', 'librosa') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(maxsplit=1)
    assert out == [str(len(list_models())), "[]\n"]


def test_describe_models_covers_every_name():
    rows = describe_models(input_shape=(1, 64, 101), num_classes=10)
    assert [r["name"] for r in rows] == list_models()
    for row in rows:
        if row["name"] == "svm":
            assert row["params"] is None and row["gflops"] is None
        else:
            assert row["params"] == count_params(meta(row["name"], 10))
            assert row["gflops"] > 0
    with pytest.raises(SpectroError, match="cnn cannot take input"):
        describe_models(input_shape=(1, 4, 4))
    resnet18 = next(r for r in rows if r["name"] == "resnet18")
    # Only convolutions and the classifier count; here 0.49 GFLOPs, far below 224x224's 3.6.
    assert 0.4 < resnet18["gflops"] < 0.6


# --- faithful to the paper and to torchvision ---------------------------------------


@pytest.mark.parametrize("depth", DEPTHS)
def test_torchvision_parameters_and_state_dict(depth):
    ours = meta(f"resnet{depth}", 1000, in_channels=3)
    with torch.device("meta"):
        reference = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    assert count_params(ours) == count_params(reference) == TORCHVISION_PARAMS[depth]
    ours.load_state_dict(reference.state_dict(), strict=True)  # names and shapes match


@pytest.mark.parametrize("depth", [18, 50])
def test_torchvision_weights_give_torchvision_outputs(depth):
    torch.manual_seed(0)
    reference = getattr(torchvision.models, f"resnet{depth}")(weights=None).eval()
    ours = build(f"resnet{depth}", 1000, in_channels=3).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=0)


@pytest.mark.parametrize("depth", DEPTHS)
def test_flops_match_paper_table_1(depth):
    placement = {"stride_placement": "paper"} if depth >= 50 else {}  # a Bottleneck option
    paper = meta(f"resnet{depth}", 1000, in_channels=3, **placement)
    gmacs = count_flops(paper, (1, 3, 224, 224)) / 2e9  # FlopCounterMode: 2 FLOPs per MAC
    assert abs(gmacs - PAPER_GMACS[depth]) / PAPER_GMACS[depth] < 0.05


def test_blocks_refuse_what_they_cannot_do():
    # A BasicBlock has no 1x1 conv to put a stride in: the option is refused, not ignored.
    with pytest.raises(TypeError, match="stride_in_1x1"):
        BasicBlock(64, 64, stride_in_1x1=True)
    with pytest.raises(SpectroError, match="stride_placement 'paper'.*BasicBlock"):
        build("resnet18", 3, stride_placement="paper")
    with torch.device("meta"):
        build("resnet50", 3, stride_placement="paper")  # a Bottleneck net takes it


def test_flops_v15_resnet50_matches_torchvision():
    gmacs = count_flops(meta("resnet50", 1000, in_channels=3), (1, 3, 224, 224)) / 2e9
    assert gmacs == pytest.approx(4.09, abs=0.005)
    with torch.device("meta"):
        reference = torchvision.models.resnet50(weights=None)
    assert count_flops(reference, (1, 3, 224, 224)) / 2e9 == pytest.approx(gmacs, rel=1e-12)


@pytest.mark.parametrize("depth", sorted(PAPER_SMALL_MPARAMS))
def test_small_input_nets_match_paper_table_6(depth):
    model = meta(f"resnet{depth}", 10, in_channels=3)
    assert sum(1 for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)) - 2 == depth
    # Option B projections add ~1% over the paper's parameter-free option A.
    assert count_params(model) / 1e6 == pytest.approx(PAPER_SMALL_MPARAMS[depth], rel=0.03)


@pytest.mark.parametrize("name, stem, shape", [
    ("resnet18", None, (2, 4)),        # default ImageNet stem: /32
    ("resnet18", "small", (8, 13)),    # stride-1 stem: /8
    ("resnet20", None, (16, 26)),      # small-input nets: /4
])
def test_stem_sets_final_resolution(name, stem, shape):
    options = {} if stem is None else {"stem": stem}
    features = meta(name, 5, **options).forward_features(torch.empty(1, 1, 64, 101, device="meta"))
    assert tuple(features.shape[-2:]) == shape


@pytest.mark.parametrize("name", [n for n in NETS if n.startswith("plain")])
def test_plain_nets_have_no_shortcuts(name):
    model = meta(name, 5)
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock | Bottleneck)]
    assert blocks and not any(b.shortcut or b.downsample is not None for b in blocks)
    assert not any("downsample" in n for n, _ in model.named_modules())


@pytest.mark.parametrize("name", ["plain18", "plain50", "resnet18", "resnet50"])
def test_block_output_is_branch_plus_shortcut(name):
    """By construction: a plain block outputs its branch through the final ReLU, nothing added."""
    torch.manual_seed(0)
    block = build(name, 5).layer2[1].eval()  # a block without projection
    x = torch.randn(2, block.conv1.in_channels, 8, 8)
    depth = 3 if isinstance(block, Bottleneck) else 2
    out = x
    for i in range(1, depth + 1):
        out = getattr(block, f"bn{i}")(getattr(block, f"conv{i}")(out))
        out = torch.relu(out) if i < depth else out
    expected = torch.relu(out if name.startswith("plain") else out + x)
    torch.testing.assert_close(block(x), expected)


def test_preactivation_structure():
    model = build("preresnet50", 5).eval()
    assert isinstance(model.layer1[0].bn1, nn.Identity)  # the stem's BN-ReLU precedes it
    assert isinstance(model.layer1[1].bn1, nn.BatchNorm2d)
    assert [type(m) for m in model.layer2[0].downsample] == [nn.Conv2d]  # no BN: He et al. 2016
    assert isinstance(model.final_norm[0], nn.BatchNorm2d)
    block = model.layer3[2]
    x = torch.randn(2, block.bn1.num_features, 4, 4)
    out = x
    for i in range(1, 4):
        out = getattr(block, f"conv{i}")(torch.relu(getattr(block, f"bn{i}")(out)))
    torch.testing.assert_close(block(x), out + x)  # identity added, no ReLU after it


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "preresnet18"])
def test_zero_init_residual_starts_blocks_as_identity(name):
    block = build(name, 5, zero_init_residual=True).layer1[1].eval()
    x = torch.rand(2, block.conv1.in_channels, 8, 8)  # non-negative, as after a ReLU
    torch.testing.assert_close(block(x), x)
    with pytest.raises(SpectroError, match="shortcuts"):
        build("plain18", 5, zero_init_residual=True)


# --- pretrained checkpoints ---------------------------------------------------------


@pytest.fixture(scope="module")
def imagenet_checkpoint(tmp_path_factory):
    """A torchvision resnet18 with random weights and non-trivial BN statistics."""
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None)
    reference.train()
    with torch.no_grad():
        reference(torch.randn(8, 3, 64, 64))  # moves BN running stats away from 0/1
    path = tmp_path_factory.mktemp("ckpt") / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    return path, reference.eval()


def test_pretrained_rgb_to_grey_and_new_classifier(imagenet_checkpoint):
    path, reference = imagenet_checkpoint
    message = r"re-initialised \(checkpoint has 1000 classes, model has 7\)"
    with pytest.warns(UserWarning, match=message):
        model = build("resnet18", 7, pretrained=path).eval()
    assert model.conv1.weight.shape == (64, 1, 7, 7)
    grey = torch.randn(2, 1, 64, 96)
    with torch.no_grad():
        ours = model.forward_features(grey)
        x = grey.repeat(1, 3, 1, 1)  # the same image in R, G and B
        for stage in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            x = getattr(reference, stage)(x)
    # Summing the RGB kernels is exact up to float32 summation order.
    torch.testing.assert_close(ours, x, rtol=1e-4, atol=1e-5)


def test_pretrained_same_shape_loads_everything(imagenet_checkpoint, recwarn):
    path, reference = imagenet_checkpoint
    model = build("resnet18", 1000, in_channels=3, pretrained=path).eval()
    assert not [w for w in recwarn if "re-initialised" in str(w.message)]
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(model(x), reference(x), rtol=0, atol=0)


def test_pretrained_errors(imagenet_checkpoint, tmp_path):
    path, _ = imagenet_checkpoint
    with pytest.raises(SpectroError, match="not found"):
        build("resnet18", 7, pretrained=tmp_path / "missing.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(SpectroError, match="refusing"):
        build("resnet18", 7, pretrained=garbage)
    with pytest.raises(SpectroError, match="does not fit"), pytest.warns(UserWarning):
        build("resnet18", 7, pretrained=path, stem="small")  # 3x3 stem, 7x7 weights


# --- the classifier interface -------------------------------------------------------


@pytest.fixture(scope="module")
def split():
    X, y = tones(120, seed=1)
    X_test, y_test = tones(60, seed=2)
    return X, y, X_test, y_test


def test_svm_beats_chance_and_reloads_bit_exactly(split, tmp_path):
    X, y, X_test, y_test = split
    clf = SVMClassifier(frontend="stats+pca", n_components=8, chunk_size=16)
    assert clf.fit(as_memmap(tmp_path, X), y, X_val=X_test, y_val=y_test) is clf
    assert list(clf.classes_) == ["high", "low", "mid"]
    proba = clf.predict_proba(X_test)
    assert proba.shape == (60, 3) and np.allclose(proba.sum(axis=1), 1)
    assert np.mean(clf.predict(X_test) == y_test) > 0.9  # chance is 1/3
    clf.save(tmp_path / "svm")
    assert json.loads((tmp_path / "svm" / "model.json").read_text())["kind"] == "svm"
    loaded = load_classifier(tmp_path / "svm")
    assert isinstance(loaded, SVMClassifier)
    np.testing.assert_array_equal(loaded.predict_proba(X_test), proba)


def test_svm_refuses_untrusted_types(split, tmp_path):
    X, y, *_ = split
    SVMClassifier(C_grid=(1.0,), gamma_factors=(1.0,)).fit(X, y).save(tmp_path)
    skops.io.dump(UntrustedThing(), tmp_path / "model.skops")
    with pytest.raises(SpectroError, match="allow-list.*UntrustedThing"):
        load_classifier(tmp_path)


def test_svm_most_probable_class_is_the_svcs_own_prediction(tmp_path):
    # Weak, overlapping tones: many test images sit near a boundary, where a
    # per-class (Platt) calibration can reorder the classes and temperature cannot.
    rng = np.random.default_rng(3)
    labels = np.array(list("abcde"))
    k = np.arange(250) % 5
    X = rng.normal(0.0, 1.0, (250, 1, 24, 8)).astype(np.float32)
    X[np.arange(250), 0, 2 + 4 * k, :] += 0.35
    X, y, X_test = X[:150].astype(np.float16), labels[k[:150]], X[150:].astype(np.float16)
    groups = np.arange(150) % 10
    for calibration in ("temperature", "sigmoid"):
        clf = SVMClassifier(calibration=calibration, seed=0).fit(X, y, groups=groups)
        fitted = clf.pipeline_["svc"].calibrated_classifiers_[0].estimator  # the SVC refitted on all rows
        Z = clf.pipeline_["scale"].transform(clf.pipeline_["features"].transform(X_test))
        # The SVC's one-vs-rest decision: one-vs-one votes, ties broken by summed confidence.
        vote = clf.classes_[fitted.decision_function(Z).argmax(axis=1)]
        proba = clf.predict_proba(X_test)
        assert np.allclose(proba.sum(axis=1), 1)
        agree = np.mean(clf.classes_[proba.argmax(axis=1)] == vote)
        if calibration == "temperature":
            assert agree == 1.0
    assert agree < 1.0  # sigmoid: this data has images where the two disagree, so the check above can fail
    # Two classes: one decision value per image, still two probability columns.
    ab = np.isin(y, ["a", "b"])
    two = SVMClassifier(C_grid=(1.0,), gamma_factors=(1.0,)).fit(X[ab], y[ab])
    assert two.predict_proba(X_test).shape == (100, 2)
    assert np.array_equal(two.classes_[two.predict_proba(X_test).argmax(axis=1)], two.predict(X_test))


def test_svm_saved_before_the_calibration_option_loads_as_sigmoid(split, tmp_path):
    X, y, X_test, _ = split
    clf = SVMClassifier(C_grid=(1.0,), gamma_factors=(1.0,), calibration="sigmoid").fit(X, y)
    clf.save(tmp_path)
    manifest = json.loads((tmp_path / "model.json").read_text())
    del manifest["options"]["calibration"]
    (tmp_path / "model.json").write_text(json.dumps(manifest))
    loaded = load_classifier(tmp_path)
    assert loaded.calibration == "sigmoid"
    np.testing.assert_array_equal(loaded.predict_proba(X_test), clf.predict_proba(X_test))
    with pytest.raises(SpectroError, match="unknown calibration 'isotonic'"):
        SVMClassifier(calibration="isotonic").fit(X, y)


class UntrustedThing:
    """Stands for any type a tampered model.skops could smuggle in."""


def test_spectrogram_features_known_answer_and_chunking(tmp_path):
    X = np.zeros((5, 1, 4, 6), dtype=np.float16)
    X[:, 0, 2, ::2] = 2.0  # bin 2 alternates 2, 0: mean 1, std 1
    Z = SpectrogramFeatures("stats").fit(X).transform(X)
    np.testing.assert_array_equal(Z[0], [0, 0, 1, 0, 0, 0, 1, 0])
    X, _ = tones(50, seed=3)
    one = SpectrogramFeatures("stats+pca", n_components=4, chunk_size=1000).fit(X)
    many = SpectrogramFeatures("stats+pca", n_components=4, chunk_size=7)
    many.fit(as_memmap(tmp_path, X))
    np.testing.assert_allclose(many.transform(X)[:, :32], one.transform(X)[:, :32], rtol=1e-12)
    with pytest.raises(SpectroError, match="unknown SVM front-end"):
        SpectrogramFeatures("mfcc").fit(X)


@pytest.fixture(scope="module")
def trained_cnn(split):
    X, y, X_test, y_test = split
    clf = NetClassifier("cnn", epochs=6, batch_size=16, lr=3e-3, device="cpu", seed=0)
    return clf.fit(X, y, X_val=X_test, y_val=y_test)


def test_net_classifier_trains_and_reloads_bit_exactly(trained_cnn, split, tmp_path):
    _, _, X_test, y_test = split
    assert trained_cnn.history_[-1]["train_loss"] < trained_cnn.history_[0]["train_loss"]
    proba = trained_cnn.predict_proba(as_memmap(tmp_path, X_test))
    assert proba.shape == (60, 3) and np.allclose(proba.sum(axis=1), 1)
    assert np.mean(trained_cnn.predict(X_test) == y_test) > 0.9  # chance is 1/3
    trained_cnn.save(tmp_path / "run")
    loaded = load_classifier(tmp_path / "run")
    assert isinstance(loaded, NetClassifier) and list(loaded.classes_) == ["high", "low", "mid"]
    np.testing.assert_array_equal(loaded.predict_proba(X_test), proba)


def test_net_classifier_is_repeatable(split):
    X, y, X_test, _ = split
    fits = [NetClassifier("resnet20", epochs=1, batch_size=32, device="cpu", seed=3).fit(X, y)
            for _ in range(2)]
    np.testing.assert_array_equal(fits[0].predict_proba(X_test), fits[1].predict_proba(X_test))


class Exploit:
    """A pickle payload: unpickling it runs a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_malicious_weights_are_refused(trained_cnn, tmp_path, writer):
    trained_cnn.save(tmp_path)
    marker = tmp_path / "pwned"
    with open(tmp_path / "weights.pt", "wb") as f:
        if writer == "pickle":
            pickle.dump(Exploit(marker), f, protocol=2)  # torch.load's own protocol
        else:
            torch.save({"fc.weight": Exploit(marker)}, f)
    with pytest.raises(SpectroError, match="refusing to load .*weights.pt"):
        load_classifier(tmp_path)
    assert not marker.exists()
    if writer == "pickle":  # the payload is live: plain pickle would have run it
        pickle.loads(pickle.dumps(Exploit(marker)))
        assert marker.exists()


def test_load_errors(trained_cnn, tmp_path):
    with pytest.raises(SpectroError, match="not a saved spectro model"):
        load_classifier(tmp_path)
    trained_cnn.save(tmp_path)
    torch.save(build("resnet20", 3).state_dict(), tmp_path / "weights.pt")
    with pytest.raises(SpectroError, match="does not fit cnn"):
        load_classifier(tmp_path)


def test_make_classifier_dispatch():
    assert isinstance(make_classifier("svm", cv=2), SVMClassifier)
    net = make_classifier("resnet20", epochs=1, stem="imagenet")
    assert isinstance(net, NetClassifier) and net.model_options == {"stem": "imagenet"}
    with pytest.raises(SpectroError, match="valid models"):
        make_classifier("resnet19")
    with pytest.raises(SpectroError, match="svm"):
        make_classifier("svm", epochs=3)
    with pytest.raises(SpectroError, match=r"shaped \(N, C, F, T\)"):
        NetClassifier("cnn").fit(np.zeros((4, 16, 20)), [0, 1, 0, 1])
    with pytest.raises(SpectroError, match="not fitted"):
        SVMClassifier().predict(np.zeros((1, 1, 8, 8)))


def test_cli_models_lists_every_name(capsys):
    from spectro.cli.main import main

    assert main(["models", "--size", "--input-shape", "1x32x32", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["name"] for r in rows) == sorted(list_models() + ["ensemble", "reference"])  # compare only, no size
    assert {r["name"]: r["params"] for r in rows}["ensemble"] is None
    assert {r["name"]: r["params"] for r in rows}["cnn"] == count_params(build("cnn", 10))
    assert main(["models", "--size", "--input-shape", "64x101"]) == 2
    assert "input shape must be (channels, freq, time)" in capsys.readouterr().err
    assert main(["models", "--input-shape", "1xbig"]) == 2
    assert "CxFxT" in capsys.readouterr().err
