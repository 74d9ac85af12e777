"""FeatureConfig and TrainConfig: strict loading, generic type checks, any settings give a config or one line."""

import dataclasses
import json
from typing import Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spectro.config import FeatureConfig, check_types
from spectro.errors import SpectroError
from spectro.signals.features import filterbank


def test_from_dict_names_file_and_field():
    with pytest.raises(SpectroError, match=r"^run/feature_config.json: invalid feature setting: field 'n_fft' "
                                           r"must be an integer, got 'big'$"):
        FeatureConfig.from_dict({"n_fft": "big"}, source="run/feature_config.json")
    with pytest.raises(SpectroError, match="field 'center' must be true or false, got 1"):
        FeatureConfig.from_dict({"center": 1})
    assert FeatureConfig.from_dict({"duration": 2}).duration == 2  # an int where a float is expected is fine


def test_compression_is_checked_and_old_configs_keep_their_fingerprint():
    with pytest.raises(SpectroError, match=r"^invalid feature setting: compression must be one of \('db', 'pcen'\), "
                                           r"got 'log'$"):
        FeatureConfig(compression="log")
    with pytest.raises(SpectroError, match="compression 'pcen' needs power 2"):
        FeatureConfig(compression="pcen", power=1.0)
    with pytest.raises(SpectroError, match="cannot be combined with db=False"):
        FeatureConfig(compression="pcen", db=False)
    assert FeatureConfig(compression="pcen", top_db=None, freq_scale="linear").compression == "pcen"
    # config.json of a store written before the field existed: it loads as dB, with its old fingerprint.
    old = {"sample_rate": 16000, "duration": 1.0, "crop": "loudest", "pad": "end", "window": None,
           "window_hop": None, "n_fft": 512, "hop_length": 160, "win_length": None, "window_fn": "hann",
           "center": True, "power": 2.0, "db": True, "top_db": 80.0, "freq_scale": "mel", "n_mels": 64,
           "fmin": None, "fmax": None}
    cfg = FeatureConfig.from_dict(old)
    assert cfg.compression == "db" and cfg.fingerprint() == "c8558441a9f2e11d"
    assert cfg.replace(compression="pcen").fingerprint() != cfg.fingerprint()


def test_check_types_is_generic_over_dataclass_fields():
    @dataclasses.dataclass
    class Other:
        epochs: int = 3
        lr: Optional[float] = None
        options: dict = dataclasses.field(default_factory=dict)
        name: str = "x"

    check_types(Other(epochs=5, lr=1e-3, options={"a": 1}))
    for bad, match in [(dict(epochs="ten"), "field 'epochs' must be an integer, got 'ten'"),
                       (dict(epochs=True), "field 'epochs' must be an integer"),
                       (dict(lr=float("nan")), "field 'lr' must be a finite number or null, got nan"),
                       (dict(options=[1]), "field 'options' must be a dict"),
                       (dict(name=None), "field 'name' must be a str, got None")]:
        with pytest.raises(SpectroError, match=f"^train_config.json: {match}"):
            check_types(Other(**bad), source="train_config.json")


# -- hypothesis: any options give a valid config or one clear line -------------------------

_NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**7, 10**7),
                     st.sampled_from([0, 1, 16, 256, 512, 8000, 16000, 0.5, 1e-9, -1]))
_ANY = st.one_of(_NUMBERS, st.none(), st.booleans(), st.text(max_size=5),
                 st.sampled_from(["mel", "hann", "end", "pcen"]))


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({}, optional={f.name: _ANY for f in dataclasses.fields(FeatureConfig)}))
def test_any_feature_settings_give_a_config_or_a_spectro_error(changes):
    try:
        cfg = FeatureConfig(**changes)
    except SpectroError as err:
        assert len(str(err).splitlines()) == 1
        return
    assert all(n > 0 for n in cfg.image_shape) and cfg.n_freq * cfg.n_frames <= 2**25
    json.dumps(cfg.to_dict(), allow_nan=False)  # what config.json will hold
    if cfg.n_fft <= 2**16:
        try:
            filterbank(cfg)
        except SpectroError as err:
            assert "bands are empty" in str(err)


def test_input_fields_at_their_neutral_values_keep_fingerprints_and_images_record_only_theirs():
    from spectro.training.defaults import defaults_stamp

    cfg = FeatureConfig()
    assert cfg.fingerprint() == "c8558441a9f2e11d" and defaults_stamp() == "063dff91278e0fcd"
    for change in ({"mat_key": "_DE_time$"}, {"column": "ax"}, {"channels": "first"}):
        assert cfg.replace(**change).fingerprint() != cfg.fingerprint()
    img = FeatureConfig(input="image", image_size=[32, 40], colormap="jet")  # a list, as JSON gives it
    assert img.image_shape == (1, 32, 40) and hash(img) == hash(FeatureConfig.from_dict(img.to_dict()))
    assert img.to_dict() == {"input": "image", "colormap": "jet", "crop_box": None, "image_size": [32, 40],
                             "resize": False}  # no STFT setting pretending to have made the images
    for bad, match in [(dict(colormap="parula"), "colormap must be one of"),
                       (dict(crop_box=(10, 0, 5, 5)), "LEFT < RIGHT"),
                       (dict(image_size=(1, 40)), "two sizes of 2 pixels or more"),
                       (dict(resize=True), "resize needs an image size")]:
        with pytest.raises(SpectroError, match=match):
            FeatureConfig(input="image", **bad)
