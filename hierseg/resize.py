"""Resizing numpy images and label maps (numpy and Pillow only; no torch).

:func:`fit_long_side` is the one long-side scaling rule (model views, decoding limits, display
sizes); :func:`resize_nearest` brings label maps back to a photo's size with exact ids;
:func:`resize_rgb` is the bilinear resize of photos.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["fit_long_side", "resize_nearest", "resize_rgb"]


def fit_long_side(height: int, width: int, max_side: int, enlarge: bool = False, min_side: int = 1) -> tuple[int, int]:
    """(h, w) of a height x width image scaled, aspect kept, to a long side of ``max_side``.

    Without ``enlarge`` an image already within ``max_side`` keeps its size; sides are rounded and
    never below ``min_side``.
    """
    if not enlarge and max(height, width) <= max_side:
        return height, width
    scale = max_side / max(height, width)
    return max(min_side, round(height * scale)), max(min_side, round(width * scale))


def resize_rgb(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of an (H, W, 3) uint8 image (no-op at the same size)."""
    if rgb.shape[:2] == (height, width):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.BILINEAR))


def resize_nearest(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest sampling of an (H, W, ...) label map or image to (height, width).

    Output pixel (r, c) takes input pixel (r * H // height, c * W // width): ids stay exact (real
    ids, crisp boundaries), and none is lost when enlarging.
    """
    rows = np.minimum((np.arange(height) * array.shape[0]) // height, array.shape[0] - 1)
    cols = np.minimum((np.arange(width) * array.shape[1]) // width, array.shape[1] - 1)
    return array[rows[:, None], cols[None, :]]
