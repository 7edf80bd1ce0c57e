"""Load any photo as an (H, W, 3) uint8 RGB array, safely.

``load_image`` accepts a path, encoded bytes, a binary file object, a PIL image or a numpy array and
always returns the same thing: RGB, uint8, upright (EXIF orientation applied), transparency flattened
onto white, high bit depths scaled (not clipped) to 8 bits. Float images (numpy or Pillow mode "F")
must lie in [0, 1].

Sizes. Every image must be at least ``MIN_SIDE`` pixels on each side. Images whose long side exceeds
``max_side`` (default ``DEFAULT_MAX_SIDE`` = 2048) come back downscaled so that their long side is
exactly ``max_side``; the returned array is that working size, not the original one. Pass
``max_side=None`` to keep full resolution.

Decompression bombs. ``Image.open`` only parses the header, so the declared size is checked before any
pixel is decoded. JPEGs are decoded directly at 1/2, 1/4 or 1/8 scale when that still covers the
working size (``Image.draft``), so a large photo never exists in memory at full resolution. Whatever
is finally decoded may not exceed ``max_pixels`` (default 100 MP, about 300 MB as RGB); anything
larger is refused with ``ImageLoadError``. Pillow's own guard (``Image.MAX_IMAGE_PIXELS``) still
refuses headers above twice its limit (about 179 MP by default); that is reported as
``ImageLoadError`` too.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps

from .errors import ImageLoadError
from .resize import fit_long_side

__all__ = ["DEFAULT_MAX_PIXELS", "DEFAULT_MAX_SIDE", "MIN_SIDE", "ImageSource", "load_image"]

MIN_SIDE = 8
DEFAULT_MAX_SIDE = 2048
DEFAULT_MAX_PIXELS = 100_000_000

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, Image.Image, np.ndarray]

# Float images may overshoot [0, 1] by rounding noise; anything further out is a unit mistake.
_FLOAT_TOLERANCE = 1e-3
# What Pillow raises for damaged or incomplete data, depending on the format.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_HIGH_DEPTH_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")


def load_image(
    source: ImageSource,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int | None = DEFAULT_MAX_SIDE,
) -> np.ndarray:
    """Decode ``source`` into an (H, W, 3) uint8 RGB array at the working size.

    Args:
        source: a path (str or PathLike); encoded image bytes; a binary file object; a PIL image; or a
            numpy array of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) with dtype uint8, uint16
            (16-bit), bool, float in [0, 1], or another integer type holding 0-255 (8-bit) or 0-65535
            (16-bit) values. Animated images give their first frame.
        max_pixels: most pixels the decoder may materialise (checked from the header, before decoding).
            Numpy arrays are already in memory and are not subject to it.
        max_side: the long side of the result; larger images are downscaled (aspect ratio kept).
            ``None`` keeps the original size.

    Raises:
        ImageLoadError: the source is missing, empty, not an image, truncated or corrupt, smaller than
            ``MIN_SIDE``, too large to decode safely, or an array with an unusable shape or range.
        TypeError: ``source`` is none of the accepted types.
    """
    if max_pixels < MIN_SIDE * MIN_SIDE:
        raise ValueError(f"max_pixels must be at least {MIN_SIDE * MIN_SIDE}, got {max_pixels}")
    if max_side is not None and max_side < MIN_SIDE:
        raise ValueError(f"max_side must be at least {MIN_SIDE} or None, got {max_side}")

    if isinstance(source, np.ndarray):
        what = f"the {source.dtype} array of shape {source.shape}"
        return _finish(Image.fromarray(_array_to_uint8(source, what)), what, max_side)
    if isinstance(source, Image.Image):
        # Never draft a caller's image: draft() reconfigures the object in place.
        return _decode(source, "the given PIL image", max_pixels, max_side, may_draft=False)

    fp, what = _open_binary(source)
    try:
        with warnings.catch_warnings():
            # Our own size checks below replace Pillow's warning between its two thresholds.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(fp)
    except Image.DecompressionBombError as exc:
        raise _error(what, f"its header declares a size too large to open safely ({exc}). Shrink it first.") from exc
    except Image.UnidentifiedImageError as exc:
        raise _error(what, "it is not an image in a format Pillow reads (JPEG, PNG, TIFF, GIF, WebP, BMP...).") from exc
    except _DECODE_ERRORS as exc:
        raise _error(what, f"it could not be read as an image ({exc}).") from exc
    with image:
        return _decode(image, what, max_pixels, max_side, may_draft=True)


def _open_binary(source: object) -> tuple[str | BinaryIO, str]:
    """A path or seekable binary stream for ``Image.open``, and how to name the source in messages."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise _error(f"'{path}'", "the file does not exist.")
        if path.is_dir():
            raise _error(f"'{path}'", "it is a folder, not an image file.")
        if path.stat().st_size == 0:
            raise _error(f"'{path}'", "the file is empty (0 bytes).")
        return str(path), f"'{path}'"
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise _error("the image bytes", "there are no bytes (length 0).")
        return io.BytesIO(bytes(source)), "the image bytes"
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        what = f"'{name}'" if isinstance(name, (str, os.PathLike)) else "the given file object"
        seekable = getattr(source, "seekable", None)
        if callable(seekable) and seekable():
            return source, what  # type: ignore[return-value]
        # Pillow seeks while identifying the format, so buffer pipes and sockets first.
        data = source.read()
        if not data:
            raise _error(what, "the file is empty (0 bytes).")
        return io.BytesIO(data), what
    accepted = "a path, bytes, a binary file object, a PIL image or a numpy array"
    raise TypeError(f"load_image takes {accepted}, not {type(source).__name__}")


def _decode(image: Image.Image, what: str, max_pixels: int, max_side: int | None, may_draft: bool) -> np.ndarray:
    """Size checks from the header, then a bounded decode of a (possibly still lazy) PIL image."""
    width, height = image.size
    target = _working_size((width, height), what, max_side)
    if may_draft and target != (width, height):
        image.draft(None, target)  # JPEG only; other formats ignore it and decode at full size
    if image.width * image.height > max_pixels:
        raise _error(
            what,
            f"it is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels), more than the "
            f"{max_pixels / 1e6:.1f} megapixels hierseg decodes at once (a guard against decompression bombs). "
            "Shrink it first, or pass a larger max_pixels.",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except Image.DecompressionBombError as exc:
        raise _error(what, f"it is too large to decode safely ({exc}).") from exc
    except _DECODE_ERRORS as exc:
        problem = f"the file is damaged or incomplete (truncated); its pixels cannot be decoded ({exc})."
        raise _error(what, problem) from exc
    return _finish(ImageOps.exif_transpose(image), what, max_side)


def _finish(image: Image.Image, what: str, max_side: int | None) -> np.ndarray:
    """Any decoded PIL image -> uint8 RGB array, downscaled to the working size."""
    if image.mode in _HIGH_DEPTH_MODES:
        image = Image.fromarray(_array_to_uint8(np.asarray(image), what))
    try:
        if image.mode in _ALPHA_MODES or "transparency" in image.info:
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        image = image.convert("RGB")
    except ValueError as exc:
        raise _error(what, f"its colour mode {image.mode!r} cannot be converted to RGB.") from exc
    size = _working_size(image.size, what, max_side)
    if size != image.size:
        # reducing_gap first shrinks by an integer factor (fast box filter), then resamples the rest.
        image = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
    return np.array(image, dtype=np.uint8)


def _working_size(size: tuple[int, int], what: str, max_side: int | None) -> tuple[int, int]:
    """(width, height) after downscaling to ``max_side``; rejects images below ``MIN_SIDE``."""
    width, height = int(size[0]), int(size[1])
    if min(width, height) < MIN_SIDE:
        raise _error(what, f"it is only {width}x{height} pixels; hierseg needs at least {MIN_SIDE} on each side.")
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scaled_height, scaled_width = fit_long_side(height, width, max_side)
    scaled = (scaled_width, scaled_height)
    if min(scaled) < MIN_SIDE:
        raise _error(
            what,
            f"at {width}x{height} pixels it is too elongated: shrinking its long side to {max_side} would leave "
            f"fewer than {MIN_SIDE} pixels across. Crop it, or pass a larger max_side.",
        )
    return scaled


def _array_to_uint8(array: np.ndarray, what: str) -> np.ndarray:
    """(H, W[, 1|3|4]) array of any supported dtype -> uint8 of shape (H, W), (H, W, 3) or (H, W, 4)."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise _error(what, "expected shape (H, W) for gray, (H, W, 3) for RGB or (H, W, 4) for RGBA.")
    _working_size((array.shape[1], array.shape[0]), what, None)  # minimum size, before reducing an empty array
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * np.uint8(255)
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise _error(what, "it contains NaN or infinite values.")
        low, high = float(array.min()), float(array.max())
        if low < -_FLOAT_TOLERANCE or high > 1 + _FLOAT_TOLERANCE:
            problem = f"its values run from {low:g} to {high:g}, but float images must lie in [0, 1]"
            raise _error(what, problem + " (divide 0-255 data by 255).")
        return np.rint(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    if array.dtype.kind in "ui":
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 65535:
            problem = f"its values run from {low} to {high}; integer images must hold"
            raise _error(what, problem + " 8-bit (0-255) or 16-bit (0-65535) values.")
        # uint16 declares 16 bits even when dark; other integer types are read by their range.
        if array.dtype == np.uint16 or high > 255:
            return np.rint(array / 257.0).astype(np.uint8)  # 65535 -> 255 exactly, full range kept
        return array.astype(np.uint8)
    raise _error(what, f"dtype {array.dtype} is not an image type.")


def _error(what: str, problem: str) -> ImageLoadError:
    """One message shape for every failure: which input, then what is wrong with it."""
    return ImageLoadError(f"Cannot load {what}: {problem}")
