"""The shared preprocessing: any real image becomes the MNIST-style (28, 28) input the model expects."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from digitpipe.decode import ImageTooLarge, decode_gray_jpeg, gray_from_bytes, open_image, read_gray, to_gray
from digitpipe.images import is_mnist_form, model_pixels, model_pixels_changed, to_model_input
from digitpipe.photo import page_only
from tests.helpers import photographed

SAMPLES = range(0, 5000, 125)  # 40 digits, 4 of each class
DESK = (70, 60, 50)  # a dark wooden table


def encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def model_input(img) -> np.ndarray:
    """The model's input for an image, as the float in [0, 1] the network sees."""
    return to_model_input(img).astype(np.float32) / 255.0


def clean(mnist, i: int) -> np.ndarray:
    return mnist[0][i].astype(np.float32) / 255.0


def paper(mnist, i: int) -> Image.Image:
    """The digit as dark ink on white paper."""
    return Image.fromarray(255 - mnist[0][i])


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "CMYK", "P", "I;16"])
def test_any_mode_becomes_gray_28x28_in_unit_range(mode):
    x = to_model_input(Image.new(mode, (40, 30)))
    assert x.shape == (28, 28) and x.dtype == np.uint8


def test_mnist_form_passes_through_unchanged(mnist):
    for i in SAMPLES:
        assert is_mnist_form(mnist[0][i])
        assert np.array_equal(to_model_input(Image.fromarray(mnist[0][i])), mnist[0][i])


def test_inverted_mnist_digit_is_exactly_the_original(mnist):
    for i in SAMPLES:
        assert np.array_equal(to_model_input(paper(mnist, i)), mnist[0][i])


@pytest.mark.parametrize(("name", "make", "tolerance"), [
    ("off-centre on a bigger canvas", lambda im: pasted(im, (90, 60), (55, 5)), 0.01),
    ("ink on paper, 10x larger", lambda im: inverted(im).resize((280, 280), Image.Resampling.BICUBIC), 0.04),
    ("blue ink on yellow paper, 5x", lambda im: coloured(im).resize((140, 140), Image.Resampling.BICUBIC), 0.04),
    ("black ink on a transparent PNG, 4x", lambda im: transparent(im).resize((112, 112)), 0.04),
    ("photo lit from the right, 20x", lambda im: photographed(im, "side"), 0.07),
    ("photo with a shadow across the page, 20x", lambda im: photographed(im, "shadow"), 0.07),
    ("photo with dark corners, 20x", lambda im: photographed(im, "corners"), 0.07),
    ("photo of the page on a dark desk", lambda im: ImageOps.expand(photographed(im, "flat"), 80, DESK), 0.07),
    ("dark desk along one side", lambda im: ImageOps.expand(photographed(im, "side"), (160, 0, 0, 0), DESK), 0.07),
    ("page turned on a desk", lambda im: photographed(im, "flat").rotate(8, expand=True, fillcolor=DESK), 0.07),
    ("28x28 on gray paper, off-centre", lambda im: on_gray_paper(im, 215, (3, -3)), 0.04),
    ("28x28 on darker gray paper, off-centre", lambda im: on_gray_paper(im, 190, (-2, 3)), 0.04),
    ("28x28 on a dark gray ground, off-centre", lambda im: on_gray_paper(im, 40, (3, 2)), 0.04),
])
def test_transformed_digits_give_the_clean_input(mnist, name, make, tolerance):
    errors = [np.abs(model_input(make(Image.fromarray(mnist[0][i]))) - clean(mnist, i)).mean() for i in SAMPLES]
    assert np.mean(errors) < tolerance, name


def on_gray_paper(img: Image.Image, level: int, shift: tuple[int, int]) -> Image.Image:
    """The 28x28 digit moved off the centre by ``shift`` pixels (rows, columns) on a ground of gray ``level``: dark
    ink on light paper, or light ink on a dark ground, with the ink as far from the ground as the paper allows.
    MNIST-sized and as centred as a small scan: only its ground, counted as ink, would make it look centred."""
    x = np.roll(np.asarray(img, dtype=np.float32) / 255.0, shift, axis=(0, 1))
    ink = level - x * (level - 15) if level > 127 else level + x * (240 - level)
    return Image.fromarray(np.rint(ink).astype(np.uint8))


def pasted(img: Image.Image, size: tuple[int, int], at: tuple[int, int]) -> Image.Image:
    canvas = Image.new("L", size, 0)
    canvas.paste(img, at)
    return canvas


def inverted(img: Image.Image) -> Image.Image:
    return Image.fromarray(255 - np.asarray(img))


def coloured(img: Image.Image) -> Image.Image:
    ink = np.asarray(img, dtype=np.float32)[..., None] / 255.0
    rgb = (1 - ink) * np.array([250, 240, 180]) + ink * np.array([20, 30, 140])
    return Image.fromarray(rgb.astype(np.uint8), mode="RGB")


def transparent(img: Image.Image) -> Image.Image:
    rgba = np.zeros((28, 28, 4), dtype=np.uint8)
    rgba[..., 3] = np.asarray(img)
    return Image.fromarray(rgba, mode="RGBA")


@pytest.mark.parametrize(("mode", "fmt"), [("P", "PNG"), ("P", "GIF"), ("L", "PNG"), ("RGB", "PNG")])
def test_a_colour_keyed_transparent_background_is_white_paper_as_alpha_is(mnist, mode, fmt):
    """Icons and GIFs mark their background transparent by a colour key, not an alpha channel; the keyed colour
    (black here) is not the paper, and the image must read as the alpha-channel one does under either policy."""
    ink = np.asarray(mnist[0][SAMPLES[0]])
    dark = np.where(ink > 0, 40, 0).astype(np.uint8)  # dark-gray ink on a keyed black background
    img = Image.fromarray(dark).convert(mode)
    key = (0, 0, 0) if mode == "RGB" else int(np.asarray(img)[0, 0])  # a P image's key is the index of black
    buf = io.BytesIO()
    img.save(buf, format=fmt, transparency=key)
    keyed = Image.open(io.BytesIO(buf.getvalue()))
    assert keyed.mode == mode and "transparency" in keyed.info
    alpha = Image.fromarray(np.dstack([dark, dark, dark, np.where(ink > 0, 255, 0).astype(np.uint8)]), "RGBA")
    assert np.array_equal(np.asarray(to_gray(keyed)), np.asarray(to_gray(alpha)))
    assert np.asarray(to_gray(keyed))[0, 0] == 255  # paper, not the keyed black
    for normalize in ("mnist", "none"):
        assert np.array_equal(to_model_input(keyed, normalize), to_model_input(alpha, normalize))


def test_white_ink_drawn_only_in_the_alpha_channel_reads_as_black_ink_does(mnist):
    """A canvas export draws in white on a transparent canvas: on white paper it would be a blank page."""
    ink = np.asarray(mnist[0][SAMPLES[0]])
    black_ink = transparent(Image.fromarray(ink))
    white_ink = np.asarray(black_ink).copy()
    white_ink[..., :3] = 255
    white_ink = Image.fromarray(white_ink, "RGBA")
    assert np.asarray(to_gray(white_ink))[0, 0] == 0  # black paper under white ink
    assert np.array_equal(np.asarray(to_gray(black_ink)), 255 - np.asarray(to_gray(white_ink)))
    assert np.abs(model_input(white_ink) - model_input(black_ink)).max() < 1e-6
    empty = np.zeros((28, 28, 4), dtype=np.uint8)
    empty[..., :3] = 255
    assert np.asarray(to_gray(Image.fromarray(empty, "RGBA"))).min() == 255  # fully transparent: still blank paper


def test_thin_pen_on_a_big_page_is_thickened_to_mnist_strokes():
    page = Image.new("L", (600, 800), 255)
    ImageDraw.Draw(page).line([(300, 100), (300, 700)], fill=0, width=4)  # a "1" drawn with a fine pen
    x = model_input(page)
    columns = np.flatnonzero(x.max(axis=0) > 0.5)
    assert 2 <= len(columns) <= 4  # MNIST pens are 2-3 px wide
    rows = np.flatnonzero(x.max(axis=1) > 0.5)
    assert len(rows) >= 18  # the stroke spans the 20 px box
    assert abs(np.average(np.arange(28), weights=x.sum(axis=0)) - 14) <= 1


def test_blank_images_give_an_empty_input():
    assert not to_model_input(Image.new("L", (300, 200), 255)).any()
    assert not to_model_input(Image.new("RGB", (28, 28), (0, 0, 0))).any()


def test_decodes_bytes_and_files_the_same(tmp_path, mnist):
    data = encode(paper(mnist, 3), "PNG")
    (tmp_path / "a.png").write_bytes(data)
    batch = model_pixels([read_gray(tmp_path / "a.png"), gray_from_bytes(data)])
    assert batch.shape == (2, 28, 28)
    assert np.array_equal(batch[0], to_model_input(open_image(data)))
    assert np.array_equal(batch[1], batch[0])


def test_huge_images_are_refused_from_the_header():
    with pytest.raises(ImageTooLarge):
        open_image(encode(Image.new("1", (8000, 6000)), "PNG"))


def gray_jpegs(mnist) -> dict[str, bytes]:
    """Gray JPEGs the way cameras, scanners and image tools write them."""
    rng = np.random.default_rng(0)
    digit = Image.fromarray(mnist[0][7])
    photo = Image.fromarray(rng.integers(0, 256, (301, 457), dtype=np.uint8)).filter(ImageFilter.GaussianBlur(2))
    out = {}
    for name, img in (("digit", digit), ("paper", paper(mnist, 9)), ("odd size", photo)):
        for quality in (5, 75, 100):
            out[f"{name} q{quality}"] = encode_jpeg(img, quality=quality)
        out[f"{name} progressive"] = encode_jpeg(img, progressive=True, optimize=True)
    return out


def encode_jpeg(img: Image.Image, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **options)
    return buf.getvalue()


def test_the_fast_gray_jpeg_decoder_gives_pils_pixels_bit_for_bit(mnist):
    for name, data in gray_jpegs(mnist).items():
        fast = decode_gray_jpeg(data)
        assert fast is not None, name
        assert np.array_equal(fast, np.asarray(Image.open(io.BytesIO(data)))), name


def test_everything_but_intact_gray_jpegs_is_left_to_pil(mnist):
    gray = encode_jpeg(Image.fromarray(mnist[0][0]))
    leave = {
        "colour JPEG (PIL's RGB-to-gray rounding applies)": encode_jpeg(coloured(Image.fromarray(mnist[0][0]))),
        "CMYK JPEG": encode_jpeg(Image.new("CMYK", (30, 30))),
        "truncated JPEG": gray[:len(gray) // 2],
        "PNG": encode(Image.fromarray(mnist[0][0]), "PNG"),
        "text": b"\xff\xd8 but not a JPEG",
    }
    for name, data in leave.items():
        assert decode_gray_jpeg(data) is None, name
    assert decode_gray_jpeg(gray, max_pixels=28 * 28 - 1) is None  # PIL refuses it from the header


def test_reading_files_gives_pils_gray_pixels_and_pils_errors(tmp_path, mnist):
    sources = {**gray_jpegs(mnist), "colour": encode_jpeg(coloured(Image.fromarray(mnist[0][3]))),
               "png": encode(transparent(Image.fromarray(mnist[0][4])), "PNG")}
    for name, data in sources.items():
        path = tmp_path / "image"
        path.write_bytes(data)
        assert np.array_equal(read_gray(path), np.asarray(to_gray(open_image(data)))), name
    path.write_bytes(encode_jpeg(Image.fromarray(mnist[0][0]))[:300])
    with pytest.raises(OSError, match="(?i)truncated"):
        read_gray(path)


def test_a_batch_is_preprocessed_exactly_like_one_image_at_a_time(mnist):
    rng = np.random.default_rng(1)
    images = mnist[0]
    grays = [images[0], 255 - images[1], np.roll(images[2], (6, -5), axis=(0, 1)), np.zeros((28, 28), np.uint8),
             rng.integers(0, 256, (28, 28), dtype=np.uint8), np.asarray(paper(mnist, 5).resize((70, 90))),
             np.full((28, 28), 255, np.uint8), images[3]]
    for policy in ("mnist", "none"):
        one_by_one = np.stack([to_model_input(Image.fromarray(g), policy) for g in grays])
        assert np.array_equal(model_pixels(grays, policy), one_by_one)
        assert np.array_equal(model_pixels(grays[::-1], policy), one_by_one[::-1])
        assert model_pixels([], policy).shape == (0, 28, 28)


def with_orientation(img: Image.Image, fmt: str, orientation: int, where: str = "exif") -> bytes:
    """The image saved with an orientation in its EXIF, or only in its XMP (as some editors write it)."""
    buf = io.BytesIO()
    if where == "xmp":
        img.save(buf, format=fmt, xmp=(
            b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="%d"/></rdf:RDF>'
            b'</x:xmpmeta>' % orientation))
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        img.save(buf, format=fmt, exif=exif)
    return buf.getvalue()


@pytest.mark.parametrize("fmt, mode, where", [("PNG", "L", "exif"), ("JPEG", "L", "exif"), ("JPEG", "RGB", "exif"),
                                              ("JPEG", "L", "xmp"), ("JPEG", "RGB", "xmp")])
def test_a_sideways_phone_photo_is_turned_upright_by_its_exif_orientation(mnist, tmp_path, fmt, mode, where):
    """Also where only the XMP says it: a gray JPEG's fast decoder must not skip the turn the others make."""
    upright = paper(mnist, 7).resize((84, 84)).convert(mode)  # a 7: no turn or flip of it looks the same
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # the sensor's view; EXIF 6 says "turn 90 degrees clockwise"
    path = tmp_path / "photo"
    path.write_bytes(with_orientation(stored, fmt, 6, where))
    seen = read_gray(path)
    assert seen.shape == (84, 84)
    want = np.asarray(upright.convert("L"), dtype=np.float32)
    if fmt == "PNG":
        assert np.array_equal(seen, want)
    assert np.abs(seen - want).mean() < 3 < np.abs(np.asarray(stored.convert("L"), dtype=np.float32) - want).mean()
    assert np.abs(model_input(read_gray(path)) - clean(mnist, 7)).mean() < 0.05


@pytest.mark.parametrize("size", [(1, 1), (3, 5000), (5000, 3), (1, 700), (29, 29)])
def test_any_shape_gives_an_input(size):
    noise = np.random.default_rng(0).integers(0, 256, size[::-1], dtype=np.uint8)
    for img in (Image.fromarray(noise), Image.new("L", size, 255), Image.new("L", size, 0)):
        for policy in ("mnist", "none"):
            x = to_model_input(img, policy)
            assert x.shape == (28, 28) and x.dtype == np.uint8


def test_only_a_desk_around_the_page_is_taken_away():
    page = Image.new("L", (600, 450), 220)
    ImageDraw.Draw(page).line([(300, 300), (300, 449)], fill=20, width=60)  # a bold stroke touching the edge
    assert np.array_equal(page_only(np.asarray(page)), np.asarray(page))  # a stroke is not a desk
    ImageDraw.Draw(page).rectangle([(0, 300), (600, 450)], fill=220)
    ImageDraw.Draw(page).line([(300, 150), (300, 350)], fill=20, width=60)  # the stroke, inside the page
    on_desk = np.asarray(ImageOps.expand(page, (0, 0, 0, 120), 60))  # the page with a desk below it
    cut = page_only(on_desk)
    assert 420 <= cut.shape[0] <= 460 and cut.shape[1] == 600  # the page, give or take the desk's edge
    assert cut[:400].min() == 20 and cut[400:].min() >= 200  # the stroke kept, the desk's edge painted over
    white_on_black = np.asarray(ImageOps.invert(page))
    assert np.array_equal(page_only(white_on_black), white_on_black)  # no light page: nothing to do


def filled_shapes(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Gray 28x28 images unlike digits: filled rectangles and discs that touch the edges, on any background."""
    out = []
    for _ in range(n):
        img = Image.new("L", (28, 28), int(rng.integers(0, 256)))
        draw = ImageDraw.Draw(img)
        x0, y0 = rng.integers(-10, 14, size=2)
        x1, y1 = x0 + rng.integers(12, 40), y0 + rng.integers(12, 40)
        shape = draw.rectangle if rng.random() < 0.5 else draw.ellipse
        shape([int(x0), int(y0), int(x1), int(y1)], fill=int(rng.integers(0, 256)))
        out.append(np.asarray(img))
    return out


def test_policy_none_keeps_the_decoded_pixels_byte_for_byte():
    shapes = filled_shapes(np.random.default_rng(3), 200)
    pixels, changed = model_pixels_changed(shapes, "none")
    assert np.array_equal(pixels, np.stack(shapes))
    assert not changed.any()
    mnist_pixels, mnist_changed = model_pixels_changed(shapes, "mnist")  # what the digit policy would have done
    assert mnist_changed.mean() > 0.5 and not np.array_equal(mnist_pixels, np.stack(shapes))


def test_policy_none_only_resizes_other_sizes():
    big = np.random.default_rng(0).integers(0, 256, (56, 84), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(big).resize((28, 28), Image.Resampling.BOX))
    assert np.array_equal(to_model_input(big, "none"), expected)
    light = np.full((40, 40), 250, np.uint8)  # a light background stays light: nothing is inverted
    assert to_model_input(light, "none").min() == 250


def test_an_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="unknown preprocessing policy 'auto'"):
        model_pixels([np.zeros((28, 28), np.uint8)], "auto")


def test_float_samples_below_zero_start_the_scale_and_a_nan_is_refused():
    """A float or signed-integer scan may hold negative samples: they must not wrap round to near-white (a
    background of -1 came out as 253), and a NaN must not turn the whole image into a blank with a warning."""
    from digitpipe.decode import gray_from_bytes, refusal

    def tiff(arr: np.ndarray, mode: str) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(arr, mode=mode).save(buf, format="TIFF")
        return buf.getvalue()

    samples = np.full((28, 28), -1.0, np.float32)
    samples[5:23, 12:16] = 1.0  # a bar of ink on a background of -1
    for arr, mode in ((samples, "F"), ((samples * 1000).astype(np.int32), "I")):
        gray = gray_from_bytes(tiff(arr, mode))
        assert gray[0, 0] == 0 and gray[10, 13] == 255 and set(np.unique(gray)) == {0, 255}
    for level in (100.0, 1.0, 1000.0):  # rounded, not cut: 100 * (255 / 100) is 254.99999999999997
        assert gray_from_bytes(tiff(np.where(samples > 0, level, 0.0).astype(np.float32), "F"))[10, 13] == 255
    samples[0, 0] = np.nan
    with pytest.raises(ValueError) as err:
        gray_from_bytes(tiff(samples, "F"))
    assert refusal(err.value).message == "cannot decode: some pixels are not numbers (NaN or infinite)"


def test_specks_of_a_stack_agree_with_speck_one_image_at_a_time():
    """The stack check the 28x28 path uses gives what :func:`speck` gives each image: dots and short dashes of
    every size up to a digit's, anywhere, at every gray level (below the ink level too)."""
    from digitpipe.images import speck, specks

    rng = np.random.default_rng(0)
    stack = np.zeros((600, 28, 28), np.uint8)
    for image in stack:
        for _ in range(rng.integers(0, 4)):
            r, c = rng.integers(0, 26, 2)
            image[r:r + rng.integers(1, 6), c:c + rng.integers(1, 6)] = rng.integers(0, 256)
    expected = np.array([speck(image / max(int(image.max()), 1)) for image in stack])  # stretched, as normalise
    assert np.array_equal(specks(stack), expected)
    assert 100 < expected.sum() < 500  # both kinds are there


def test_a_faint_digit_in_mnist_form_passes_unchanged(mnist):
    """A digit already in MNIST form but faint (its brightest pixel 50 of 255) is no speck: it goes to the model
    as it is, as a bright one does, not through normalise."""
    from digitpipe.images import model_pixels

    faint = (mnist[0][:50].astype(np.float64) * 50 / 255).round().astype(np.uint8)
    assert np.array_equal(model_pixels(list(faint)), faint)


def drawn(strokes: list[list[tuple[int, int]]], dx: int = 0, dy: int = 0) -> Image.Image:
    """Strokes drawn as the web page draws them: black, 20 px wide with round ends, on a white 280x280 board."""
    board = Image.new("L", (280, 280), 255)
    pen = ImageDraw.Draw(board)
    for stroke in strokes:
        moved = [(x + dx, y + dy) for x, y in stroke]
        pen.line(moved, fill=0, width=20, joint="curve")
        for x, y in (moved[0], moved[-1]):
            pen.ellipse((x - 10, y - 10, x + 10, y + 10), fill=0)
    return board


SEVEN = [[(80, 60), (200, 60), (130, 230)]]
UPRIGHT_SEVEN = [[(80, 60), (200, 60), (200, 230)]]
ONE = [[(140, 40), (140, 240)]]
FOUR = [[(90, 40), (70, 170), (210, 170)], [(170, 90), (170, 250)]]


@pytest.mark.parametrize(("name", "strokes", "dx", "dy"), [
    ("a 1 along the left edge", ONE, -135, 0),
    ("a 1 along the right edge", ONE, 135, 0),
    ("a 7 whose down-stroke runs along the right edge", UPRIGHT_SEVEN, 72, 0),
    ("a 7 whose bar runs along the top edge", SEVEN, 0, -55),
    ("a 7 whose down-stroke ends on the bottom edge", SEVEN, 0, 45),
    ("a 4 whose stem runs along the right edge", FOUR, 105, 0),
    ("a 4 whose stem ends on the bottom edge", FOUR, 0, 35),
])
def test_a_drawing_that_touches_the_edge_is_read_as_the_same_drawing_in_the_middle(name, strokes, dx, dy):
    """A stroke along the board's edge looks like the edge of a dark desk around a photographed page; cut away as
    one, it took the whole digit with it and the page said nothing was there. It must read as the same drawing
    with a margin of paper around it (the board's edge clips the stroke, so it is compared with itself)."""
    board = drawn(strokes, dx, dy)
    with_margin = model_input(ImageOps.expand(board, 40, fill=255))
    assert with_margin.max() == 1.0
    assert np.abs(model_input(board) - with_margin).mean() < 0.01, name
