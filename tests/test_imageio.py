"""load_image: every input kind and colour mode, EXIF orientation, size guards and clear failures."""

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from hierseg.errors import ImageLoadError
from hierseg.imageio import DEFAULT_MAX_SIDE, MIN_SIDE, load_image


def _two_halves(width: int = 40, height: int = 20) -> np.ndarray:
    """Left half red, right half blue: survives JPEG and shows any rotation or flip."""
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[:, : width // 2] = (255, 0, 0)
    rgb[:, width // 2 :] = (0, 0, 255)
    return rgb


def _save(image: Image.Image, path: Path, **params) -> Path:
    image.save(path, **params)
    return path


def _mode(path: Path) -> str:
    with Image.open(path) as image:
        return image.mode


def _png_declaring(width: int, height: int) -> bytes:
    """A valid 8x8 PNG whose IHDR (CRC fixed up) claims another size: a decompression bomb in 100 bytes."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    ihdr = slice(12, 29)  # chunk type + 13 data bytes, right after the 8-byte signature and length
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[ihdr])))
    return bytes(data)


# ---------------------------------------------------------------- inputs and formats


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "BMP", "WEBP"])
def test_rgb_file_formats(tmp_path, fmt):
    rgb = _two_halves()
    path = _save(Image.fromarray(rgb), tmp_path / f"img.{fmt.lower()}", format=fmt)
    out = load_image(path)
    assert out.shape == (20, 40, 3) and out.dtype == np.uint8
    if fmt in ("JPEG", "WEBP"):  # lossy: colours blur across the edge, so compare away from it
        assert np.abs(out[:, 4:14].astype(int) - (255, 0, 0)).max() <= 8
        assert np.abs(out[:, 26:36].astype(int) - (0, 0, 255)).max() <= 8
    else:
        np.testing.assert_array_equal(out, rgb)


def test_every_source_kind_gives_the_same_pixels(tmp_path):
    rgb = _two_halves()
    path = _save(Image.fromarray(rgb), tmp_path / "img.png")
    data = path.read_bytes()

    class Pipe:  # read() only, like a socket or a pipe: not seekable
        def __init__(self, payload: bytes) -> None:
            self._stream = io.BytesIO(payload)

        def read(self, size: int = -1) -> bytes:
            return self._stream.read(size)

    with open(path, "rb") as handle, Image.open(path) as lazy:
        sources = [str(path), path, data, bytearray(data), memoryview(data), io.BytesIO(data), Pipe(data)]
        sources += [handle, lazy, Image.fromarray(rgb), rgb]
        for source in sources:
            np.testing.assert_array_equal(load_image(source), rgb)
        assert not handle.closed  # the caller's file stays theirs


def test_result_is_a_fresh_writeable_array():
    rgb = _two_halves()
    out = load_image(rgb)
    assert out.flags.writeable and out.flags.c_contiguous
    out[0, 0] = 0
    assert rgb[0, 0, 0] == 255


def test_unsupported_source_type():
    with pytest.raises(TypeError, match="load_image takes"):
        load_image(12345)


# ---------------------------------------------------------------- colour modes


def test_grayscale_l(tmp_path):
    path = _save(Image.new("L", (16, 12), 77), tmp_path / "gray.png")
    out = load_image(path)
    assert out.shape == (12, 16, 3)
    assert (out == 77).all()


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 1000, 32896, 65535]], np.uint16).repeat(8, 0).repeat(2, 1)  # 8x8
    path = _save(Image.fromarray(values), tmp_path / "gray16.png")
    assert _mode(path) == "I;16"
    out = load_image(path)
    np.testing.assert_array_equal(out[0, ::2, 0], [0, 4, 128, 255])
    assert (out[..., 0] == out[..., 2]).all()


def test_16_bit_rgb_png(tmp_path):
    cv2 = pytest.importorskip("cv2")
    rgb16 = np.zeros((8, 8, 3), np.uint16)
    rgb16[:] = (65535, 32896, 0)
    path = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(path), rgb16[..., ::-1])  # OpenCV writes BGR
    assert (load_image(path) == (255, 128, 0)).all()


def test_32_bit_integer_mode_i(tmp_path):
    values = np.full((8, 8), 65535, np.int32)
    values[:4] = 25700  # 25700 / 257 = 100
    path = _save(Image.fromarray(values), tmp_path / "int32.tif")
    assert _mode(path) == "I"
    out = load_image(path)
    assert (out[:4] == 100).all() and (out[4:] == 255).all()


def test_float_mode_f(tmp_path):
    values = np.full((8, 8), 0.25, np.float32)
    path = _save(Image.fromarray(values), tmp_path / "float.tif")
    assert _mode(path) == "F"
    assert (load_image(path) == 64).all()


def test_rgba_is_composited_onto_white(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:, :4] = (255, 0, 0, 0)  # fully transparent red -> white
    rgba[:, 4:] = (0, 0, 255, 255)  # opaque blue stays blue
    rgba[0, 4:] = (0, 0, 0, 128)  # half-transparent black -> mid gray
    out = load_image(_save(Image.fromarray(rgba), tmp_path / "rgba.png"))
    assert (out[:, :4] == 255).all()
    assert (out[1:, 4:] == (0, 0, 255)).all()
    assert np.abs(out[0, 4:].astype(int) - 127).max() <= 1


def test_la_is_composited_onto_white(tmp_path):
    la = Image.merge("LA", [Image.new("L", (8, 8), 0), Image.new("L", (8, 8), 0)])
    assert (load_image(_save(la, tmp_path / "la.png")) == 255).all()


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_with_transparency(tmp_path, fmt):
    palette_image = Image.new("P", (8, 8), 0)
    palette_image.putpalette([0, 255, 0] + [255, 0, 0] * 255)
    palette_image.paste(1, (0, 0, 8, 4))  # top half index 1 (red), bottom half index 0 (green)
    path = _save(palette_image, tmp_path / f"p.{fmt.lower()}", transparency=0)
    assert _mode(path) == "P"
    out = load_image(path)
    assert (out[:4] == (255, 0, 0)).all()
    assert (out[4:] == 255).all()  # transparent green shows the white background


def test_palette_without_transparency(tmp_path):
    palette_image = Image.new("P", (8, 8), 3)
    palette_image.putpalette([0, 0, 0] * 3 + [10, 20, 30] + [0, 0, 0] * 252)
    assert (load_image(_save(palette_image, tmp_path / "p.png")) == (10, 20, 30)).all()


def test_one_bit(tmp_path):
    bits = Image.new("1", (8, 8), 0)
    bits.paste(1, (0, 0, 4, 8))
    out = load_image(_save(bits, tmp_path / "bits.png"))
    assert (out[:, :4] == 255).all() and (out[:, 4:] == 0).all()


def test_cmyk(tmp_path):
    cmyk = Image.new("CMYK", (8, 8), (0, 0, 0, 0))  # no ink: white
    cmyk.paste((255, 0, 0, 0), (0, 0, 4, 8))  # full cyan
    out = load_image(_save(cmyk, tmp_path / "cmyk.tif"))
    assert (out[:, :4] == (0, 255, 255)).all() and (out[:, 4:] == 255).all()
    jpeg = load_image(_save(cmyk, tmp_path / "cmyk.jpg", quality=95))
    assert np.abs(jpeg[:, :2].astype(int) - (0, 255, 255)).max() <= 8


def test_ycbcr():
    ycbcr = Image.fromarray(_two_halves()).convert("YCbCr")
    assert np.abs(load_image(ycbcr).astype(int) - _two_halves()).max() <= 3


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), color) for color in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert (load_image(path) == (255, 0, 0)).all()


# ---------------------------------------------------------------- numpy inputs


def test_numpy_dtypes():
    rgb = _two_halves()
    np.testing.assert_array_equal(load_image(rgb.astype(np.uint16) * 257), rgb)
    np.testing.assert_array_equal(load_image(rgb.astype(np.float32) / 255), rgb)
    np.testing.assert_array_equal(load_image(rgb.astype(np.float64) / 255), rgb)
    np.testing.assert_array_equal(load_image(rgb.astype(np.int64)), rgb)  # 0-255 held in a wide type


def test_numpy_gray_bool_and_alpha():
    gray = np.full((8, 9), 200, np.uint8)
    assert load_image(gray).shape == (8, 9, 3) and (load_image(gray) == 200).all()
    assert (load_image(gray[..., None]) == 200).all()
    mask = np.zeros((8, 8), bool)
    mask[:, :4] = True
    out = load_image(mask)
    assert (out[:, :4] == 255).all() and (out[:, 4:] == 0).all()
    rgba = np.zeros((8, 8, 4), np.uint8)  # transparent black
    assert (load_image(rgba) == 255).all()


def test_uint16_is_always_16_bit():
    dark = np.full((8, 8), 255, np.uint16)  # 255 out of 65535 is nearly black, not white
    assert (load_image(dark) == 1).all()


@pytest.mark.parametrize(
    "array, message",
    [
        (np.full((8, 8, 3), 255.0), r"values run from 255 to 255.*\[0, 1\]"),
        (np.full((8, 8), np.nan, np.float32), "NaN"),
        (np.full((8, 8), -1, np.int16), "8-bit .* 16-bit"),
        (np.full((8, 8), 70000, np.int32), "8-bit .* 16-bit"),
        (np.zeros((8, 8, 2), np.uint8), r"\(H, W, 3\) for RGB"),
        (np.zeros((8, 8, 3, 1), np.uint8), r"\(H, W, 3\) for RGB"),
        (np.zeros((8, 8), np.complex64), "dtype complex64"),
        (np.zeros((0, 0, 3), np.uint8), "only 0x0 pixels"),
    ],
)
def test_bad_arrays(array, message):
    with pytest.raises(ImageLoadError, match=message):
        load_image(array)


def test_float_rounding_noise_is_tolerated():
    assert (load_image(np.full((8, 8), 1.0000001)) == 255).all()


# ---------------------------------------------------------------- EXIF orientation


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90 degrees clockwise for display
    path = _save(Image.fromarray(_two_halves(40, 20)), tmp_path / "rotated.jpg", exif=exif, quality=95)
    out = load_image(path)
    assert out.shape == (40, 20, 3)  # width and height swapped
    assert np.abs(out[2:18].astype(int) - (255, 0, 0)).max() <= 8  # the left (red) half is now on top
    assert np.abs(out[22:38].astype(int) - (0, 0, 255)).max() <= 8


# ---------------------------------------------------------------- sizes


@pytest.fixture
def jpeg_decode_sizes(monkeypatch) -> list[tuple[int, int]]:
    """Records the size every JPEG has when it is decoded, i.e. what the decoder allocates."""
    sizes = []
    original_load = JpegImagePlugin.JpegImageFile.load

    def spy(self):
        sizes.append(self.size)
        return original_load(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", spy)
    return sizes


def test_large_jpeg_is_drafted_then_downscaled(tmp_path, jpeg_decode_sizes):
    path = _save(Image.new("RGB", (6000, 4000), (10, 200, 30)), tmp_path / "big.jpg", quality=90)
    out = load_image(path)
    assert out.shape == (1365, DEFAULT_MAX_SIDE, 3)
    assert np.abs(out.astype(int) - (10, 200, 30)).max() <= 4
    # The decoder produced 1/2 scale (3000x2000, 18 MB), never the full 72 MB.
    assert set(jpeg_decode_sizes) == {(3000, 2000)}


def test_max_side_none_keeps_full_size_and_max_side_downscales():
    rgb = np.zeros((100, 300, 3), np.uint8)
    assert load_image(rgb, max_side=None).shape == (100, 300, 3)
    assert load_image(rgb, max_side=150).shape == (50, 150, 3)
    assert load_image(rgb, max_side=300).shape == (100, 300, 3)


@pytest.mark.parametrize("size", [(1, 1), (7, 100), (100, 7)])
def test_too_small(tmp_path, size):
    path = _save(Image.new("RGB", size), tmp_path / "tiny.png")
    with pytest.raises(ImageLoadError, match=rf"tiny\.png.*only {size[0]}x{size[1]} pixels.*at least {MIN_SIDE}"):
        load_image(path)


def test_too_elongated_to_downscale():
    with pytest.raises(ImageLoadError, match="too elongated"):
        load_image(np.zeros((20, 8000, 3), np.uint8))


def test_bomb_beyond_pillows_own_limit_is_refused_before_decoding():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning must not escape either
        with pytest.raises(ImageLoadError, match="too large to open safely"):
            load_image(_png_declaring(20000, 20000))


def test_bomb_over_max_pixels_is_refused_before_decoding():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageLoadError, match=r"12000x12000 pixels \(144\.0 megapixels\).*max_pixels"):
            load_image(_png_declaring(12000, 12000))  # between Pillow's warning and error thresholds


def test_max_pixels_is_configurable(tmp_path):
    path = _save(Image.new("RGB", (100, 100)), tmp_path / "img.png")
    with pytest.raises(ImageLoadError, match="megapixels"):
        load_image(path, max_pixels=5000)
    assert load_image(path, max_pixels=10_000).shape == (100, 100, 3)


def test_jpeg_declaring_a_huge_size_is_decoded_small(jpeg_decode_sizes):
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")  # baseline frame header: length(2), precision(1), height(2), width(2)
    data[sof + 5 : sof + 9] = struct.pack(">HH", 9000, 12000)  # claims 108 MP, over max_pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = load_image(bytes(data))
    # libjpeg fills the missing scan with gray; what matters is that only 1/4 scale was ever allocated.
    assert set(jpeg_decode_sizes) == {(3000, 2250)}
    assert out.shape == (1536, 2048, 3)


def test_invalid_limits():
    with pytest.raises(ValueError, match="max_side"):
        load_image(np.zeros((8, 8), np.uint8), max_side=4)
    with pytest.raises(ValueError, match="max_pixels"):
        load_image(np.zeros((8, 8), np.uint8), max_pixels=10)


# ---------------------------------------------------------------- broken inputs


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "TIFF"])
def test_truncated_files(tmp_path, fmt):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    path = _save(Image.fromarray(noise), tmp_path / f"cut.{fmt.lower()}", format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match=rf"cut\.{fmt.lower()}.*truncated"):
        load_image(path)


def test_truncated_stream_and_bytes():
    noise = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "PNG")
    cut = buffer.getvalue()[:400]
    for source in (cut, io.BytesIO(cut)):
        with pytest.raises(ImageLoadError, match="truncated"):
            load_image(source)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageLoadError, match=r"empty\.jpg.*empty \(0 bytes\)"):
        load_image(path)
    with pytest.raises(ImageLoadError, match="no bytes"):
        load_image(b"")


def test_text_file(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    with pytest.raises(ImageLoadError, match=r"notes\.jpg.*not an image"):
        load_image(path)
    with pytest.raises(ImageLoadError, match="not an image"):
        load_image(b"GIF89a but then nothing useful")


def test_missing_path_and_folder(tmp_path):
    with pytest.raises(ImageLoadError, match=r"nope\.png.*does not exist"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="is a folder"):
        load_image(tmp_path)


def test_errors_are_value_errors():
    # Callers that only know the standard library can still catch bad images.
    with pytest.raises(ValueError):
        load_image(b"not an image")
