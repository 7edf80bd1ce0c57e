"""What the explorer draws a tree with: every node's colour, and the photo and label maps at display size.

All of it follows from a tree and its photo, so it is not state: ``canvas(chains, rgb)`` derives it
once per tree and keeps the last few, so a click redraws without resizing anything again. Colours
are derived down the collapsed tree: a part's colour comes from its parent's, so the photo, the
tree, the breadcrumb, the table and the API all use one table of colours.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from hierseg.hierarchy import ROOT, Node
from hierseg.render import golden_hues, hex_color, hsv_to_rgb
from hierseg.resize import fit_long_side, resize_nearest, resize_rgb

from .chains import ChainTree

__all__ = ["DISPLAY_MAX_SIDE", "ROOT_COLOR", "Canvas", "canvas", "display_size", "draw_canvas", "node_hex", "tree_colors"]

ROOT_COLOR = "#d9d9d9"
# The photo is shown at most this large: PNG-encoding a 2048 px overlay on every click would cost
# more than the click itself, and a browser panel never shows more pixels than this anyway.
DISPLAY_MAX_SIDE = 1024
# Canvases kept for the trees used last (a few MB each at display size).
CACHED_CANVASES = 8
# (saturation, value) shades; a child never has its parent's, siblings alternate between the other two.
_SHADES = ((0.65, 0.95), (0.90, 0.70), (0.40, 1.0))


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
    coarse = chains.children(ROOT)
    # (head, hue, slice width, shade index); the root's chain is grey and never drawn.
    width = 0.6 / max(len(coarse), 1)
    stack = [(node, hue, width, 0) for node, hue in zip(coarse, golden_hues(len(coarse), seed), strict=True)]
    heads, hues, shades = [], [], []
    while stack:
        head, hue, width, shade = stack.pop()
        heads.append(head)
        hues.append(hue)
        shades.append(_SHADES[shade])
        children = chains.children(head)
        for j, child in enumerate(children):
            offset = width * ((j + 0.5) / len(children) - 0.5)
            stack.append((child, (hue + offset) % 1.0, width / len(children), (shade + 1 + j % 2) % len(_SHADES)))
    if not heads:
        return colours
    saturation, value = np.array(shades).T
    # One conversion for the whole tree: a granularity move recolours every node.
    for head, colour in zip(heads, hsv_to_rgb(np.array(hues), saturation, value), strict=True):
        for node in chains.chain(head):
            colours[node.level][node.index] = colour
    return colours


def node_hex(colours: list[np.ndarray], node: Node) -> str:
    """``#rrggbb`` of a node in every view (grey for the root)."""
    if node == ROOT:
        return ROOT_COLOR
    return hex_color(colours[node.level][node.index])


def display_size(image_size: tuple[int, int], max_side: int = DISPLAY_MAX_SIDE) -> tuple[int, int]:
    """(W, H) at which an image of ``image_size`` (W, H) is shown: shrunk to ``max_side``, never enlarged."""
    width, height = image_size
    height, width = fit_long_side(height, width, max_side)
    return width, height


@dataclass(frozen=True, eq=False)
class Canvas:
    """What a tree is drawn with.

    Attributes:
        colours: per level, (n_nodes, 3) uint8 colours from ``tree_colors``.
        rgb: the photo at display size.
        label_maps: every level's label map at display size (nearest sampling: real ids, crisp edges).
    """

    colours: list[np.ndarray]
    rgb: np.ndarray
    label_maps: list[np.ndarray]


def draw_canvas(chains: ChainTree, rgb: np.ndarray, max_side: int = DISPLAY_MAX_SIDE) -> Canvas:
    """The canvas of the tree ``chains`` of the photo ``rgb`` (its working image), computed now."""
    hierarchy = chains.hierarchy
    width, height = display_size(hierarchy.image_size, max_side)
    if (width, height) == hierarchy.image_size:
        return Canvas(tree_colors(chains), rgb, list(hierarchy.label_maps))
    maps = [np.ascontiguousarray(resize_nearest(m, height, width)) for m in hierarchy.label_maps]
    return Canvas(tree_colors(chains), resize_rgb(rgb, height, width), maps)


_recent: OrderedDict[int, tuple[ChainTree, np.ndarray, Canvas]] = OrderedDict()
_recent_lock = threading.Lock()


def canvas(chains: ChainTree, rgb: np.ndarray) -> Canvas:
    """``draw_canvas(chains, rgb)``, from the last ``CACHED_CANVASES`` drawn when it is among them.

    A tree and its photo are immutable, so the pair's identity is the key; the cache holds them,
    so an id cannot be reused while its entry lives.
    """
    key = id(chains)
    with _recent_lock:
        entry = _recent.get(key)
        if entry is not None and entry[1] is rgb:
            _recent.move_to_end(key)
            return entry[2]
    drawn = draw_canvas(chains, rgb)
    with _recent_lock:
        _recent[key] = (chains, rgb, drawn)
        _recent.move_to_end(key)
        while len(_recent) > CACHED_CANVASES:
            _recent.popitem(last=False)
    return drawn
