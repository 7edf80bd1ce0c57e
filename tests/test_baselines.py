"""Tests of training.baselines: exact counts, nesting, contiguous labels, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from training import baselines as B
from training.metrics.regions import contingency_table


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return data.astronaut()[::4, ::4]  # 128 x 128, keeps the tests fast


def _assert_contiguous(label_map: np.ndarray) -> None:
    assert label_map.dtype == np.int64
    np.testing.assert_array_equal(np.unique(label_map), np.arange(label_map.max() + 1))


def test_slic_rag_levels_exact_counts_nested_contiguous(rgb: np.ndarray) -> None:
    counts = [1, 3, 10, 40]
    levels = B.slic_rag_levels(rgb, counts, n_superpixels=100)
    assert [int(m.max()) + 1 for m in levels] == counts
    for m in levels:
        assert m.shape == rgb.shape[:2]
        _assert_contiguous(m)
    for coarse, fine in zip(levels, levels[1:]):
        # Nested: every fine segment lies inside exactly one coarse segment.
        assert ((contingency_table(fine, coarse) > 0).sum(axis=1) == 1).all()


def test_slic_rag_levels_deterministic(rgb: np.ndarray) -> None:
    first = B.slic_rag_levels(rgb, [4, 12], n_superpixels=60)
    second = B.slic_rag_levels(rgb, [4, 12], n_superpixels=60)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_slic_rag_levels_rejects_bad_counts(rgb: np.ndarray) -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        B.slic_rag_levels(rgb, [10, 5])
    with pytest.raises(ValueError, match="raise n_superpixels"):
        B.slic_rag_levels(rgb, [5, 10_000], n_superpixels=50)
    with pytest.raises(ValueError, match="RGB"):
        B.slic_rag_levels(rgb[..., 0], [2])


def test_merge_order_merges_closest_colours_first() -> None:
    # Four vertical stripes: two dark ones, then a mid grey and a white one.
    image = np.repeat(np.repeat(np.array([[0.0, 0.05, 0.6, 1.0]]), 4, axis=0), 4, axis=1)
    rgb = np.repeat(image[..., None], 3, axis=2)
    stripes = np.repeat(np.arange(4)[None, :], 4, axis=0).repeat(4, axis=1).astype(np.int64)
    merges = B.merge_order(rgb, stripes)
    assert len(merges) == 3 and set(merges[0]) == {0, 1}
    two, three = B.cut_merge_order(stripes, merges, [2, 3])
    np.testing.assert_array_equal(three[0, ::4], [0, 0, 1, 2])
    # The merged dark pair (mean 0.025) is 0.575 from grey, grey is 0.4 from white: grey + white go next.
    np.testing.assert_array_equal(two[0, ::4], [0, 0, 1, 1])


def test_felzenszwalb_levels_ordered_coarsest_first(rgb: np.ndarray) -> None:
    levels = B.felzenszwalb_levels(rgb, scales=(50.0, 800.0, 200.0))
    counts = [int(m.max()) + 1 for m in levels]
    assert counts == sorted(counts) and counts[0] < counts[-1]
    for m in levels:
        _assert_contiguous(m)
    again = B.felzenszwalb_levels(rgb, scales=(50.0, 800.0, 200.0))
    for a, b in zip(levels, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_kmeans_token_levels_nest_and_hit_the_counts():
    from training.baselines import kmeans_token_levels, spherical_kmeans

    rng = np.random.default_rng(0)
    # Four well separated directions: 2-means must split them 2+2, 4-means one each.
    centres = np.eye(8)[:4] * 10
    tokens = (centres[rng.integers(0, 4, 64)] + rng.normal(scale=0.1, size=(64, 8))).reshape(8, 8, 8)
    labels, _ = spherical_kmeans(tokens.reshape(-1, 8), 4)
    assert len(np.unique(labels)) == 4
    maps = kmeans_token_levels(tokens, (40, 30), [2, 4, 16])
    counts = [int(m.max()) + 1 for m in maps]
    # Prototypes that win no pixel after upsampling drop out, so the finest count is at most the request.
    assert counts[:2] == [2, 4] and 4 <= counts[2] <= 16
    for coarse, fine in zip(maps, maps[1:]):
        assert all(len(np.unique(coarse[fine == i])) == 1 for i in range(int(fine.max()) + 1))
    again = kmeans_token_levels(tokens, (40, 30), [2, 4, 16])
    assert all(np.array_equal(a, b) for a, b in zip(maps, again, strict=True))


def test_slic_rag_matched_records_counts_it_cannot_reach(rgb: np.ndarray) -> None:
    available = int(B.slic_superpixels(rgb, n_superpixels=60).max()) + 1
    matched = B.slic_rag_matched(rgb, [3, 10, 10_000], n_superpixels=60)
    # One level per requested count: the unreachable one gets every superpixel and says so.
    assert matched.counts == [3, 10, available]
    assert [int(m.max()) + 1 for m in matched.label_maps] == matched.counts
    for coarse, fine in zip(matched.label_maps, matched.label_maps[1:]):
        assert ((contingency_table(fine, coarse) > 0).sum(axis=1) == 1).all()


def test_slic_rag_matched_keeps_repeated_and_unordered_counts_in_place(rgb: np.ndarray) -> None:
    matched = B.slic_rag_matched(rgb, [12, 5, 5], n_superpixels=60)
    assert matched.counts == [12, 5, 5]
    assert [int(m.max()) + 1 for m in matched.label_maps] == [12, 5, 5]
    np.testing.assert_array_equal(matched.label_maps[1], matched.label_maps[2])
    # The same cuts as the strictly increasing API.
    five, twelve = B.slic_rag_levels(rgb, [5, 12], n_superpixels=60)
    np.testing.assert_array_equal(matched.label_maps[0], twelve)
    np.testing.assert_array_equal(matched.label_maps[1], five)
    with pytest.raises(ValueError, match="positive"):
        B.slic_rag_matched(rgb, [0, 4])
