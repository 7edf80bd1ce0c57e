"""Overlays of a hierarchy on its image, and the palette they are drawn in (numpy only, integer arithmetic).

``palette``/``render_level`` colour one level by id alone (golden-ratio hue steps; the CLI's
previews). ``render_view`` draws segments in colours the caller chooses (the explorer derives them
down its collapsed tree), tinted over the photo's luminance, with a selection outlined and the rest
dimmed. ``golden_hues``, ``hsv_to_rgb`` and ``hex_color`` are the palette's building blocks.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["OUTLINE", "golden_hues", "hex_color", "hsv_to_rgb", "palette", "render_level", "render_view"]

_GOLDEN = 0.6180339887498949  # fractional part of the golden ratio: maximally spread hue steps
_SATURATION = 0.65
_VALUE = 0.95
OUTLINE = np.array([255, 255, 255], np.uint8)
NODE_OUTLINE_RADIUS = 1  # the selected node's outline is 2 * radius + 1 pixels wide
_DIM = 0.35  # brightness kept outside the selection


def golden_hues(n: int, seed: int = 0) -> np.ndarray:
    """(n,) hues in [0, 1): golden-ratio steps from hue 0, or from a start that ``seed`` picks."""
    start = np.random.default_rng(seed).random() if seed else 0.0
    return (start + np.arange(n) * _GOLDEN) % 1.0


def palette(n: int, seed: int = 0) -> np.ndarray:
    """(n, 3) uint8 colours; entry ``i`` is the colour of id ``i``.

    Hues advance by the golden ratio per id at fixed saturation and value; ``seed`` rotates the
    starting hue.
    """
    if n < 0:
        raise ValueError(f"palette size must be >= 0, got {n}")
    return hsv_to_rgb(golden_hues(n, seed), _SATURATION, _VALUE)


def hex_color(rgb: Sequence[int] | np.ndarray) -> str:
    """``#rrggbb`` of one RGB colour (e.g. a row of ``palette``)."""
    red, green, blue = (int(channel) for channel in rgb)
    return f"#{red:02x}{green:02x}{blue:02x}"


def render_level(rgb: Any, label_map: np.ndarray, alpha: float = 0.5, seed: int = 0) -> np.ndarray:
    """Tint every segment of ``label_map`` with its colour and outline the segments in white.

    Args:
        rgb: (H, W, 3) uint8 image (a PIL image, grey (H, W) or RGBA also work).
        label_map: (H, W) non-negative int ids.
        alpha: weight of the segment colour against the image.
    Returns:
        (H, W, 3) uint8 image.
    """
    label_map = np.asarray(label_map)
    rgb = _as_rgb(rgb, label_map.shape)
    colours = palette(int(label_map.max()) + 1, seed)[label_map]
    out = _blend(rgb, colours, alpha)
    out[_boundaries(label_map)] = OUTLINE
    return out


def render_view(
    rgb: np.ndarray,
    label_map: np.ndarray,
    colours: np.ndarray,
    selection: np.ndarray | None = None,
    opacity: float = 0.5,
    outlines_only: bool = False,
    dim: bool = True,
    outline: np.ndarray | None = None,
) -> np.ndarray:
    """The segments of ``label_map`` in ``colours`` over the photo, a selection outlined (the explorer's photo).

    Segments are tinted over the photo's luminance rather than its colour, so a blue part on a red
    car reads blue, not purple; each segment is outlined in its own colour. ``outlines_only``
    keeps the photo untouched under the outlines.

    Args:
        rgb: (H, W, 3) uint8 photo.
        label_map: (H, W) ids into ``colours``.
        colours: (n, 3) uint8 colour per id.
        selection: (H, W) bool mask of the selected segment, or None for the whole image.
        opacity: weight of the segment colour, 0..1.
        outlines_only: draw outlines only, no tint.
        dim: darken and desaturate outside the selection (otherwise the whole image is coloured).
        outline: (H, W) bool mask that gets the thick white outline; defaults to ``selection``.
    Returns:
        (H, W, 3) uint8 image.
    """
    label_map = np.asarray(label_map)
    rgb = _as_rgb(rgb, label_map.shape)
    fill = colours[label_map]
    out = rgb.copy() if outlines_only else _blend(_grey(rgb), fill, opacity)
    edges = _inner_boundaries(label_map)
    out[edges] = fill[edges]
    if selection is not None and dim:
        outside = ~selection
        out[outside] = _dimmed(rgb, _DIM)[outside]
    outline = selection if outline is None else outline
    if outline is not None:
        out[_dilate(_inner_boundaries(outline.astype(np.int8)) & outline, NODE_OUTLINE_RADIUS)] = OUTLINE
    return out


def _grey(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) luminance image."""
    return np.repeat(_luma(rgb).astype(np.uint8)[:, :, None], 3, axis=2)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W) uint16 luminance: ITU-R 601 weights in 8.8 fixed point (77 + 150 + 29 = 256)."""
    wide = rgb.astype(np.uint16)
    return (wide[..., 0] * 77 + wide[..., 1] * 150 + wide[..., 2] * 29) >> 8


def _inner_boundaries(label_map: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of another id, on both sides of every edge (each side gets its own colour)."""
    edge = np.zeros(label_map.shape, bool)
    horizontal = label_map[:, 1:] != label_map[:, :-1]
    vertical = label_map[1:, :] != label_map[:-1, :]
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    return edge


def _as_rgb(image: Any, shape: tuple[int, int]) -> np.ndarray:
    rgb = np.asarray(image)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    elif rgb.ndim == 3 and rgb.shape[2] == 4:
        rgb = rgb[:, :, :3]
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got shape {rgb.shape} dtype {rgb.dtype}")
    if rgb.shape[:2] != tuple(shape):
        raise ValueError(f"image is {rgb.shape[1]}x{rgb.shape[0]} but the segmentation is {shape[1]}x{shape[0]}")
    return rgb


def _blend(base: np.ndarray, colours: np.ndarray, alpha: float) -> np.ndarray:
    """``(1 - alpha) * base + alpha * colours`` in 8.8 fixed point (uint16 never overflows)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    weight = np.uint16(round(alpha * 256))
    mixed = base.astype(np.uint16) * (np.uint16(256) - weight) + colours.astype(np.uint16) * weight
    return (mixed >> 8).astype(np.uint8)


def _dimmed(rgb: np.ndarray, dim: float) -> np.ndarray:
    """Half-desaturated, then scaled to ``dim`` of its brightness."""
    half_grey = (rgb.astype(np.uint16) + _luma(rgb)[..., None]) >> 1
    return ((half_grey * np.uint16(round(dim * 256))) >> 8).astype(np.uint8)


def _boundaries(label_map: np.ndarray) -> np.ndarray:
    """Pixels whose left or upper neighbour has another id: a 1-pixel line between segments."""
    edge = np.zeros(label_map.shape, bool)
    np.not_equal(label_map[:, 1:], label_map[:, :-1], out=edge[:, 1:])
    edge[1:, :] |= label_map[1:, :] != label_map[:-1, :]
    return edge


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Square dilation by shifted ORs: (2r+1)^2 cheap array ops instead of a per-pixel loop."""
    grown = mask.copy()
    height, width = mask.shape
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            src = mask[max(-dy, 0) : height - max(dy, 0), max(-dx, 0) : width - max(dx, 0)]
            grown[max(dy, 0) : height - max(-dy, 0), max(dx, 0) : width - max(-dx, 0)] |= src
    return grown


def hsv_to_rgb(hue: np.ndarray, saturation: Any, value: Any) -> np.ndarray:
    """(n,) hues in [0, 1) with scalar or (n,) saturations and values -> (n, 3) uint8."""
    hue = np.asarray(hue, float)
    saturation = np.broadcast_to(np.asarray(saturation, float), hue.shape)
    v = np.broadcast_to(np.asarray(value, float), hue.shape)
    sector = np.floor(hue * 6.0)
    fraction = hue * 6.0 - sector
    p = v * (1.0 - saturation)
    q = v * (1.0 - saturation * fraction)
    t = v * (1.0 - saturation * (1.0 - fraction))
    choices = [
        np.stack(channels, axis=-1)
        for channels in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))
    ]
    sector = sector.astype(np.int64) % 6
    rgb = np.choose(sector[:, None], choices)
    return np.round(rgb * 255.0).astype(np.uint8)
