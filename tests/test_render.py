"""Tests of the overlays: colours, tinting, outlines and dimming on a hand-made hierarchy."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hierseg.hierarchy import ROOT, Hierarchy, Node
from hierseg.render import OUTLINE, child_colors, node_color, palette, render_level, render_node

HEIGHT, WIDTH = 48, 64
WHITE = tuple(OUTLINE.tolist())


@pytest.fixture
def tree() -> Hierarchy:
    """8x8-pixel superpixels, grouped into 16x16 blocks, grouped into the left and right halves.

    Canonical ids: 0:0 is the left half; its children 1:0..1:5 are the 16x16 blocks in raster order.
    """
    rows, cols = np.mgrid[:HEIGHT, :WIDTH]
    superpixels = (rows // 8) * (WIDTH // 8) + cols // 8
    block_row, block_col = np.divmod(np.arange(superpixels.max() + 1), WIDTH // 8)
    to_blocks = (block_row // 2) * (WIDTH // 16) + block_col // 2
    to_halves = np.arange(to_blocks.max() + 1) % (WIDTH // 16) // 2
    sizes = [superpixels.max() + 1, to_blocks.max() + 1, 2]
    evidence = [np.full((n, 3), 1 / 3, np.float32) for n in sizes]
    return Hierarchy.from_assignments(
        superpixels, [to_blocks, to_halves], evidence, ["a", "b", "c"], np.full(3, 1 / 3, np.float32)
    )


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(60, 200, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)


def blend(base: np.ndarray, colour, alpha: float) -> np.ndarray:
    return (1 - alpha) * base.astype(float) + alpha * np.asarray(colour, float)


def test_palette() -> None:
    colours = palette(64)
    assert colours.shape == (64, 3) and colours.dtype == np.uint8
    assert len(np.unique(colours, axis=0)) == 64
    np.testing.assert_array_equal(palette(5), colours[:5])  # a colour depends on its id only
    assert not np.array_equal(palette(5, seed=1), palette(5))
    # Neighbouring ids (siblings) are far apart in colour.
    assert np.abs(np.diff(colours.astype(int), axis=0)).sum(axis=1).min() > 60
    assert node_color(Node(3, 7)) == tuple(colours[7].tolist()) == node_color("1:7")
    assert palette(0).shape == (0, 3)


def test_render_level(tree: Hierarchy, rgb: np.ndarray) -> None:
    before = rgb.copy()
    out = render_level(rgb, tree.label_maps[1], alpha=0.5)
    np.testing.assert_array_equal(rgb, before)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    # Block boundaries (x = 16, 32, 48; y = 16, 32) are outlined; superpixel edges inside a block are not.
    assert (out[:, 32] == WHITE).all() and (out[16, :] == WHITE).all()
    assert not (out[:16, 24] == WHITE).all(axis=1).any()
    colours = palette(tree.n_nodes(1))
    for y, x in [(5, 5), (40, 60), (20, 40)]:
        expected = blend(rgb[y, x], colours[tree.label_maps[1][y, x]], 0.5)
        np.testing.assert_allclose(out[y, x], expected, atol=1.5)


def test_render_node_tints_children_and_dims_the_rest(tree: Hierarchy, rgb: np.ndarray) -> None:
    node = Node(0, 0)
    out = render_node(rgb, tree, node, alpha=0.55, dim=0.35)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    inside = tree.mask(node)
    outside = ~inside
    outside[:, 31:34] = False  # the thick outline spills over the border
    assert out[outside].mean() < 0.5 * rgb[outside].mean()
    assert (out[outside] < rgb[outside]).all()

    children = tree.children(node)
    colours = child_colors(tree, node)
    assert colours.shape == (len(children), 3) and len(np.unique(colours, axis=0)) == len(children)
    for child, colour in zip(children, colours):
        x0, y0, x1, y1 = tree.bbox(child)
        y, x = (y0 + y1) // 2, (x0 + x1) // 2
        np.testing.assert_allclose(out[y, x], blend(rgb[y, x], colour, 0.55), atol=1.5)
        # The child's own colour explains the pixel better than any sibling's.
        errors = [np.abs(out[y, x] - blend(rgb[y, x], other, 0.55)).sum() for other in colours]
        assert int(np.argmin(errors)) == children.index(child)


def test_render_node_outlines(tree: Hierarchy, rgb: np.ndarray) -> None:
    out = render_node(rgb, tree, "0:0")
    white = (out == WHITE).all(axis=2)
    # The node's border with the right half is three pixels wide...
    assert white[:, 31:34].all() and not white[5, 30] and not white[5, 34]
    # ...the lines between its children one pixel wide, and nothing is drawn outside the node.
    assert white[5, 16] and not white[5, 15] and not white[5, 17]
    assert white[16, 5] and not white[15, 5] and not white[17, 5]
    assert not white[:, 36:].any()


def test_render_leaf_and_root(tree: Hierarchy, rgb: np.ndarray) -> None:
    leaf = Node(tree.leaf_level, 9)
    out = render_node(rgb, tree, leaf, alpha=0.55)
    x0, y0, x1, y1 = tree.bbox(leaf)
    y, x = (y0 + y1) // 2, (x0 + x1) // 2
    np.testing.assert_allclose(out[y, x], blend(rgb[y, x], node_color(leaf), 0.55), atol=1.5)
    far = ~_grow(tree.mask(leaf))
    assert (out[far] < rgb[far]).all()
    assert child_colors(tree, leaf).shape == (0, 3)

    np.testing.assert_array_equal(
        render_node(rgb, tree, ROOT, alpha=0.55), render_level(rgb, tree.label_maps[0], alpha=0.55)
    )


def test_inputs(tree: Hierarchy, rgb: np.ndarray) -> None:
    np.testing.assert_array_equal(render_node(Image.fromarray(rgb), tree, "0:1"), render_node(rgb, tree, Node(0, 1)))
    assert render_node(rgb[:, :, 0], tree, "0:1").shape == rgb.shape  # greyscale is expanded
    with pytest.raises(ValueError, match="segmentation is"):
        render_node(rgb[:-1], tree, "0:1")
    with pytest.raises(ValueError, match="uint8"):
        render_level(rgb.astype(np.float32), tree.label_maps[0])
    with pytest.raises(ValueError):
        render_node(rgb, tree, "5:0")


def _grow(mask: np.ndarray, radius: int = 2) -> np.ndarray:
    """Pixels within ``radius`` of the mask (the band the outline may cover)."""
    padded = np.pad(mask, radius)
    grown = np.zeros_like(mask)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            grown |= padded[dy : dy + mask.shape[0], dx : dx + mask.shape[1]]
    return grown
