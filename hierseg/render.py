"""Overlays of a hierarchy on its image, for the app and the CLI (numpy only, integer arithmetic).

Colours come from node ids alone (golden-ratio hue steps), so a segment has the same colour in the
overlay and in a tree view that calls ``node_color``. Ids of siblings are contiguous in a
``Hierarchy`` built by ``from_assignments``, and consecutive ids get hues about 137 degrees apart.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .hierarchy import ROOT, Hierarchy, Node, NodeLike

__all__ = ["child_colors", "node_color", "palette", "render_level", "render_node"]

_GOLDEN = 0.6180339887498949  # fractional part of the golden ratio: maximally spread hue steps
_SATURATION = 0.65
_VALUE = 0.95
OUTLINE = np.array([255, 255, 255], np.uint8)
NODE_OUTLINE_RADIUS = 1  # the selected node's outline is 2 * radius + 1 pixels wide


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


def child_colors(hierarchy: Hierarchy, node: NodeLike, seed: int = 0) -> np.ndarray:
    """(n_children, 3) uint8 colours of ``hierarchy.children(node)``, in that order; (0, 3) for a leaf."""
    children = hierarchy.children(node)
    if not children:
        return np.zeros((0, 3), np.uint8)
    return palette(max(child.index for child in children) + 1, seed)[[child.index for child in children]]


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


def render_node(
    rgb: Any,
    hierarchy: Hierarchy,
    node: NodeLike,
    alpha: float = 0.55,
    dim: float = 0.35,
    seed: int = 0,
) -> np.ndarray:
    """Show what ``node`` is made of: its children tinted and outlined, the rest of the image dimmed.

    The node's own outline is drawn thicker. A leaf is tinted with its own colour; the root shows
    all level-0 segments with nothing dimmed.

    Args:
        rgb: the image the hierarchy was computed on, (H, W, 3) uint8.
        hierarchy: the tree.
        node: ``Node``, ``(level, index)`` or ``"level:index"``.
        alpha: weight of the child colours inside the node.
        dim: brightness kept outside the node (0 black, 1 unchanged); those pixels are also
            half desaturated.
    Returns:
        (H, W, 3) uint8 image.
    """
    node = hierarchy.node(node)
    rgb = _as_rgb(rgb, hierarchy.shape)
    if node == ROOT:
        return render_level(rgb, hierarchy.label_map(0), alpha, seed)
    if not 0.0 <= dim <= 1.0:
        raise ValueError(f"dim must be in [0, 1], got {dim}")

    out = _dimmed(rgb, dim)
    # Everything else happens in the node's box, grown by the outline width: cheap for small nodes.
    height, width = hierarchy.shape
    x0, y0, x1, y1 = hierarchy.bbox(node)
    pad = NODE_OUTLINE_RADIUS + 1
    box = np.s_[max(y0 - pad, 0) : min(y1 + pad, height), max(x0 - pad, 0) : min(x1 + pad, width)]
    inside = hierarchy.label_maps[node.level][box] == node.index
    if hierarchy.is_leaf(node):
        parts = np.zeros(inside.shape, np.int32)
        colours = np.array([node_color(node, seed)], np.uint8)
    else:
        parts = hierarchy.label_maps[node.level + 1][box]
        colours = palette(hierarchy.n_nodes(node.level + 1), seed)
    region = out[box]
    tinted = _blend(rgb[box], colours[parts], alpha)
    region[inside] = tinted[inside]
    region[_boundaries(parts) & inside] = OUTLINE
    region[_dilate(_boundaries(inside), NODE_OUTLINE_RADIUS)] = OUTLINE
    return out


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


def _hsv_to_rgb(hue: np.ndarray, saturation: float, value: float) -> np.ndarray:
    """(n,) hues in [0, 1) at one saturation and value -> (n, 3) uint8."""
    sector = np.floor(hue * 6.0)
    fraction = hue * 6.0 - sector
    p = value * (1.0 - saturation)
    q = value * (1.0 - saturation * fraction)
    t = value * (1.0 - saturation * (1.0 - fraction))
    v = np.full_like(hue, value)
    p = np.full_like(hue, p)
    choices = [
        np.stack(channels, axis=-1)
        for channels in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))
    ]
    sector = sector.astype(np.int64) % 6
    rgb = np.choose(sector[:, None], choices)
    return np.round(rgb * 255.0).astype(np.uint8)
