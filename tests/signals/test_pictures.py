"""Pictures made elsewhere back to intensities: colormap inversion, grey levels, crops, sizes, refusals."""

import numpy as np
import pytest
from input_files import grey16, picture, spectrogram_like
from matplotlib.figure import Figure
from PIL import Image

from spectro.config import FeatureConfig
from spectro.errors import BadInput
from spectro.signals.pictures import array_image, detect_colormap, invert_colormap, read_image, read_picture

ARRAY = spectrogram_like(1, 0, shape=(48, 60))
NORM = (ARRAY - ARRAY.min()) / (ARRAY.max() - ARRAY.min())


def cfg(**kw):
    return FeatureConfig(input="image", **kw)


@pytest.mark.parametrize("cmap", ["viridis", "magma", "inferno", "plasma", "jet"])
def test_a_colormapped_png_inverts_to_the_array_it_was_drawn_from(tmp_path, cmap):
    path = picture(tmp_path / "a.png", ARRAY, cmap)
    got = read_image(path, cfg(colormap=cmap, image_size=(48, 60)))
    assert got.shape == (48, 60) and got.dtype == np.float32
    # The 256-entry table quantises intensities to 1/255 (matplotlib takes entry floor(256 x)); jet's table
    # repeats one colour over entries 28-31, which no inversion can tell apart.
    assert np.abs(got - NORM).max() <= (4.5 if cmap == "jet" else 1.5) / 255


def test_jet_is_not_its_luminance(tmp_path):
    path = picture(tmp_path / "a.png", ARRAY, "jet")
    luminance = np.asarray(Image.open(path).convert("L"), np.float32)[::-1] / 255
    inverted = read_image(path, cfg(colormap="jet", image_size=(48, 60)))
    assert np.corrcoef(inverted.ravel(), NORM.ravel())[0, 1] > 0.999
    assert np.corrcoef(luminance.ravel(), NORM.ravel())[0, 1] < 0.9  # jet's luminance is not monotonic


def test_grey_pictures_8_and_16_bit_and_rgb_with_equal_channels(tmp_path):
    g16 = grey16(tmp_path / "g16.png", ARRAY)
    assert Image.open(g16).mode.startswith("I")
    np.testing.assert_allclose(read_image(g16, cfg(colormap="gray", image_size=(48, 60))), NORM, atol=1 / 65535)
    g8 = picture(tmp_path / "g8.png", ARRAY, "gray")  # RGB, R = G = B
    assert read_picture(g8)[1] is True
    np.testing.assert_allclose(read_image(g8, cfg(colormap="gray", image_size=(48, 60))), NORM, atol=1.5 / 255)
    Image.open(g8).convert("L").save(tmp_path / "l.bmp")
    np.testing.assert_allclose(read_image(str(tmp_path / "l.bmp"), cfg(image_size=(48, 60))), NORM, atol=1.5 / 255)


def test_rgba_and_tiff_and_jpeg(tmp_path):
    path = picture(tmp_path / "a.png", ARRAY, "magma")
    Image.open(path).convert("RGBA").save(tmp_path / "a_rgba.png")
    Image.open(path).save(tmp_path / "a.tiff")
    Image.open(path).save(tmp_path / "a.jpg", quality=95)
    c = cfg(colormap="magma", image_size=(48, 60))
    for name in ("a_rgba.png", "a.tiff"):
        assert np.abs(read_image(str(tmp_path / name), c) - NORM).max() <= 1.5 / 255
    assert np.corrcoef(read_image(str(tmp_path / "a.jpg"), c).ravel(), NORM.ravel())[0, 1] > 0.98


def test_the_colormap_is_detected_and_grey_is_grey(tmp_path):
    paths = [picture(tmp_path / f"{i}.png", spectrogram_like(i % 3, i), "plasma") for i in range(4)]
    name, why = detect_colormap(paths)
    assert name == "plasma" and "0.0 % of the pixels of 4 sampled colour pictures" in why
    assert detect_colormap([picture(tmp_path / "g.png", ARRAY, "gray")])[0] == "gray"


def _figure_with_axes(path, image, cmap="viridis"):
    fig = Figure(figsize=(4, 3), dpi=50)
    ax = fig.subplots()
    ax.imshow(image, origin="lower", aspect="auto", cmap=cmap)
    ax.set(xlabel="time", ylabel="frequency")
    fig.colorbar(ax.images[0], ax=ax)
    fig.savefig(path)
    return str(path)


def test_a_picture_with_axes_and_a_colour_bar_is_refused(tmp_path):
    path = _figure_with_axes(tmp_path / "fig.png", ARRAY)
    with pytest.raises(BadInput, match=r"% of its pixels are not colours of viridis \(axes, ticks, labels or a "
                                       r"colour bar\?\): crop them away with --crop-box"):
        read_image(path, cfg(colormap="viridis", resize=True, image_size=(48, 60)))


def test_the_crop_box_cuts_axes_away(tmp_path):
    # The array drawn in the middle of a white page: the box keeps exactly the array's pixels.
    path = picture(tmp_path / "a.png", ARRAY, "viridis")
    page = Image.new("RGB", (100, 80), "white")
    page.paste(Image.open(path), (20, 10))
    page.save(tmp_path / "page.png")
    with pytest.raises(BadInput, match="are not colours of viridis"):
        read_image(str(tmp_path / "page.png"), cfg(colormap="viridis", image_size=(48, 60)))
    got = read_image(str(tmp_path / "page.png"), cfg(colormap="viridis", image_size=(48, 60), crop_box=(20, 10, 80, 58)))
    assert np.abs(got - NORM).max() <= 1.5 / 255
    with pytest.raises(BadInput, match="lies outside the 100 x 80 picture"):
        read_image(str(tmp_path / "page.png"), cfg(colormap="viridis", crop_box=(0, 0, 200, 50)))


def test_another_size_is_refused_or_resized(tmp_path):
    path = picture(tmp_path / "a.png", ARRAY, "viridis")
    with pytest.raises(BadInput, match=r"other size: 48 x 60 pixels, the store's images are 32 x 40 \(give "
                                       r"--image-size 32x40 to resize them\)"):
        read_image(path, cfg(colormap="viridis", image_size=(32, 40)))
    got = read_image(path, cfg(colormap="viridis", image_size=(24, 30), resize=True))
    assert got.shape == (24, 30)
    assert abs(float(got.mean()) - float(NORM.mean())) < 0.02


@pytest.mark.parametrize("make,reason", [
    (lambda p: p.write_bytes(open(picture(p.parent / "ok.png", ARRAY), "rb").read()[:400]), "truncated"),
    (lambda p: p.write_text("not a picture"), "cannot decode"),
    (lambda p: Image.new("CMYK", (20, 10)).save(str(p).replace(".png", ".tiff")), "unreadable mode 'CMYK'"),
    (lambda p: Image.new("1", (20, 10)).save(p), "unreadable mode '1'"),
])
def test_bad_pictures_have_a_reason(tmp_path, make, reason):
    path = tmp_path / "bad.png"
    make(path)
    if not path.exists():
        path = tmp_path / "bad.tiff"
    with pytest.raises(BadInput) as err:
        read_image(str(path), cfg(colormap="viridis", image_size=(48, 60)))
    assert str(err.value).startswith(reason)


def test_grey_and_colour_do_not_mix(tmp_path):
    with pytest.raises(BadInput, match="a grey picture, and the store's pictures are drawn with viridis"):
        read_image(picture(tmp_path / "g.png", ARRAY, "gray"), cfg(colormap="viridis"))
    with pytest.raises(BadInput, match="a colour picture, and the store's pictures are grey"):
        read_image(picture(tmp_path / "c.png", ARRAY, "viridis"), cfg(colormap="gray"))


def test_arrays_are_images_as_they_are():
    np.testing.assert_array_equal(array_image(ARRAY, cfg(image_size=(48, 60))), ARRAY)
    with pytest.raises(BadInput, match=r"array is not a 2-D image \(shape 48x60x2"):
        array_image(np.ones((48, 60, 2)), cfg())
    with pytest.raises(BadInput, match="NaN or Inf"):
        array_image(np.full((4, 4), np.nan), cfg())


def test_inversion_searches_only_the_distinct_colours():
    rgb = np.broadcast_to(np.array([0.267004, 0.004874, 0.329415]), (500, 500, 3))  # viridis(0)
    intensity, foreign = invert_colormap(rgb, "viridis")
    assert foreign == 0.0 and float(intensity.max()) == 0.0
