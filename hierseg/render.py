"""Overlays of a hierarchy on its image, for the app and the CLI (numpy only, integer arithmetic).

Two colourings: ``palette``/``render_level`` colour one level by id alone (golden-ratio hue steps;
the CLI's previews), and ``tree_colors``/``render_view`` colour the explorer's collapsed tree,
where a part's colour is derived from its parent's, so the photo, the tree, the breadcrumb and the
table can all use one table of colours.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .chains import ChainTree
from .hierarchy import ROOT, Node, NodeLike

__all__ = ["node_color", "palette", "render_level", "render_thumbnail", "render_view", "tree_colors"]

_GOLDEN = 0.6180339887498949  # fractional part of the golden ratio: maximally spread hue steps
_SATURATION = 0.65
_VALUE = 0.95
OUTLINE = np.array([255, 255, 255], np.uint8)
NODE_OUTLINE_RADIUS = 1  # the selected node's outline is 2 * radius + 1 pixels wide
_DIM = 0.35  # brightness kept outside the selection
# (saturation, value) shades; a child never has its parent's, siblings alternate between the other two.
_SHADES = ((0.65, 0.95), (0.90, 0.70), (0.40, 1.0))


def palette(n: int, seed: int = 0) -> np.ndarray:
    """(n, 3) uint8 colours; entry ``i`` is the colour of id ``i``.

    Hues advance by the golden ratio per id at fixed saturation and value; ``seed`` rotates the
    starting hue.
    """
    if n < 0:
        raise ValueError(f"palette size must be >= 0, got {n}")
    start = np.random.default_rng(seed).random() if seed else 0.0
    hue = (start + np.arange(n) * _GOLDEN) % 1.0
    return _hsv_to_rgb(hue, _SATURATION, _VALUE)


def node_color(node: NodeLike, seed: int = 0) -> tuple[int, int, int]:
    """RGB colour of a node: ``palette(...)[node.index]``, the colour it has in every overlay."""
    index = Node.parse(node).index if isinstance(node, str) else int(node[1])
    r, g, b = palette(index + 1, seed)[index]
    return int(r), int(g), int(b)


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


def tree_colors(chains: ChainTree, seed: int = 0) -> list[np.ndarray]:
    """(n_nodes(l), 3) uint8 colours for every level, derived down the collapsed tree.

    The coarsest segments get golden-ratio hues, each owning a slice of the hue circle. A chain's
    children share their parent's slice (each a narrower sub-slice around its own hue) and take a
    shade (saturation, value) that differs from the parent's and alternates between siblings, so a
    part is never its parent's colour yet its family stays recognisable. Every node of a chain has
    the chain's colour (it is the same region), so a segment looks the same at every level it spans.
    """
    hierarchy = chains.hierarchy
    colours = [np.zeros((hierarchy.n_nodes(level), 3), np.uint8) for level in range(hierarchy.n_levels)]
    start = np.random.default_rng(seed).random() if seed else 0.0
    coarse = chains.children(ROOT)
    # (head, hue, slice width, shade index); the root's chain is grey and never drawn.
    stack = [(node, (start + j * _GOLDEN) % 1.0, 0.6 / max(len(coarse), 1), 0) for j, node in enumerate(coarse)]
    while stack:
        head, hue, width, shade = stack.pop()
        saturation, value = _SHADES[shade]
        colour = _hsv_to_rgb(np.array([hue]), np.array([saturation]), np.array([value]))[0]
        for node in chains.chain(head):
            colours[node.level][node.index] = colour
        children = chains.children(head)
        for j, child in enumerate(children):
            offset = width * ((j + 0.5) / len(children) - 0.5)
            stack.append((child, (hue + offset) % 1.0, width / len(children), (shade + 1 + j % 2) % len(_SHADES)))
    return colours


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
    """The explorer's photo: the segments of ``label_map`` in ``colours``, the selection outlined.

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


def render_thumbnail(rgb: np.ndarray, label_map: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """A small whole-image view of one level (for the level strip): flat colours with a little photo showing."""
    return render_view(rgb, label_map, colours, opacity=0.7)


def _grey(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) luminance image (ITU-R 601 weights in 8.8 fixed point)."""
    wide = rgb.astype(np.uint16)
    grey = ((wide[..., 0] * 77 + wide[..., 1] * 150 + wide[..., 2] * 29) >> 8).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


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
    wide = rgb.astype(np.uint16)
    # ITU-R 601 luma weights in 8.8 fixed point (77 + 150 + 29 = 256).
    grey = (wide[..., 0] * 77 + wide[..., 1] * 150 + wide[..., 2] * 29) >> 8
    half_grey = (wide + grey[..., None]) >> 1
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


def _hsv_to_rgb(hue: np.ndarray, saturation: Any, value: Any) -> np.ndarray:
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
