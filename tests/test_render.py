"""Tests of the overlays and the palette (and the explorer's tree colours): tinting, outlines, dimming on a hand-made hierarchy."""
from __future__ import annotations

import numpy as np
import pytest

from explorer.chains import ChainTree
from explorer.display import tree_colors
from hierseg.hierarchy import Hierarchy
from hierseg.render import OUTLINE, golden_hues, hex_color, hsv_to_rgb, palette, render_level, render_view

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
    assert palette(0).shape == (0, 3)
    np.testing.assert_array_equal(colours, hsv_to_rgb(golden_hues(64), 0.65, 0.95))
    assert hex_color(np.array([255, 16, 0], np.uint8)) == "#ff1000" and hex_color((1, 2, 3)) == "#010203"


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


def test_tree_colors_derive_children_from_parents(tree: Hierarchy) -> None:
    colours = tree_colors(ChainTree(tree))
    assert [c.shape for c in colours] == [(tree.n_nodes(level), 3) for level in range(tree.n_levels)]
    for level in range(tree.n_levels - 1):
        for node in tree.nodes(level):
            parent = colours[level][node.index]
            kids = np.array([colours[level + 1][c.index] for c in tree.children(node)])
            assert not (kids == parent).all(axis=1).any(), "no child has its parent's colour"
            assert len(np.unique(kids, axis=0)) == len(kids), "siblings differ"
    assert tree_colors(ChainTree(tree))[1].tolist() == colours[1].tolist(), "deterministic"


def test_render_view_keeps_the_segment_hue_on_any_photo() -> None:
    """A blue part tinted over a red photo reads blue, not purple."""
    red = np.zeros((6, 6, 3), np.uint8)
    red[..., 0] = 220
    labels = np.zeros((6, 6), np.int32)
    blue = np.array([[40, 80, 240]], np.uint8)
    out = render_view(red, labels, blue, opacity=0.5)
    assert out[3, 3, 2] > out[3, 3, 0], out[3, 3]


def test_render_view_outlines_and_dimming(tree: Hierarchy, rgb: np.ndarray) -> None:
    labels = tree.label_maps[1]
    colours = palette(tree.n_nodes(1))
    out = render_view(rgb, labels, colours, opacity=0.5)
    # Block edges are drawn on both sides, each side in its own segment's colour.
    assert (out[5, 15] == colours[labels[5, 15]]).all() and (out[5, 16] == colours[labels[5, 16]]).all()
    assert not (out[5, 8] == colours[labels[5, 8]]).all(), "inside a segment: tint, not the outline colour"
    selection = tree.mask("0:0")
    dimmed = render_view(rgb, labels, colours, selection, opacity=0.5)
    outside = ~selection
    outside[:, 30:36] = False  # the thick outline
    assert (dimmed[outside] < rgb[outside]).all()
    white = (dimmed == WHITE).all(axis=2)
    assert white[:, 31].all() and not white[:, 36:].any()
    lit = render_view(rgb, labels, colours, selection, opacity=0.5, dim=False)
    np.testing.assert_array_equal(lit[:, 40:], out[:, 40:])
    plain = render_view(rgb, labels, colours, outlines_only=True)
    np.testing.assert_array_equal(plain[5, 8], rgb[5, 8])


def test_inputs(tree: Hierarchy, rgb: np.ndarray) -> None:
    with pytest.raises(ValueError, match="segmentation is"):
        render_view(rgb[:-1], tree.label_maps[0], palette(2))
    with pytest.raises(ValueError, match="uint8"):
        render_level(rgb.astype(np.float32), tree.label_maps[0])
    with pytest.raises(ValueError):
        render_view(rgb, tree.label_maps[0], palette(2), opacity=2.0)
    assert render_level(rgb[:, :, 0], tree.label_maps[0]).shape == rgb.shape  # greyscale is expanded


def test_an_odd_family_still_differs_from_its_parent() -> None:
    """The middle one of three children sits at its parent's hue; its shade must still differ."""
    coarse = np.array([[0, 0, 0, 1, 1, 1]], np.int32)
    fine = np.array([[0, 1, 2, 3, 3, 3]], np.int32)
    tree = Hierarchy([coarse, fine], [np.zeros(0, np.int32), np.array([0, 0, 0, 1])],
                     [np.full((2, 1), 1.0, np.float32), np.full((4, 1), 1.0, np.float32)], ["x"], np.ones(1, np.float32))
    colours = tree_colors(ChainTree(tree))
    assert not (colours[1][:3] == colours[0][0]).all(axis=1).any()
    assert (colours[1][3] == colours[0][1]).all(), "a single child is its parent's chain: same colour"
