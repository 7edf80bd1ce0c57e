"""CAST building blocks: FPS semantics, segment tokens, padding, variants, gradients."""
import numpy as np
import pytest
import torch

from hierseg.model import CASTConfig, build_cast, list_variants, variant_config
from hierseg.model.official.fps import farthest_point_sample
from hierseg.model.hybrid import LiteStemConfig, RegionMergingConfig
from hierseg.model.official import ConvStemConfig, GraphPoolingConfig
from hierseg.model.pos_embed import sincos_2d
from hierseg.model.segment_tokens import segment_mean, superpixels_on_grid


def reference_fps(points: np.ndarray, k: int) -> list[int]:
    """Plain-loop FPS with dgl's rules: start at 0, squared distances, running min, first argmax."""
    picks, nearest = [0], np.full(len(points), np.inf)
    for _ in range(k - 1):
        nearest = np.minimum(nearest, ((points - points[picks[-1]]) ** 2).sum(1))
        picks.append(int(np.argmax(nearest)))
    return picks


def test_fps_matches_reference_loop_for_every_batch_element():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(5, 40, 7))
    picks = farthest_point_sample(torch.from_numpy(points), 12).numpy()
    for b in range(5):
        assert picks[b].tolist() == reference_fps(points[b], 12)


def test_fps_breaks_ties_towards_the_lowest_index():
    # Points 1..4 are all at distance 1 from point 0: the first pick after 0 must be 1.
    points = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]])
    assert farthest_point_sample(points, 3)[0].tolist()[:2] == [0, 1]


def test_fps_never_picks_padding_that_sits_on_the_mean():
    model = build_cast("cast_micro")
    tokens = torch.randn(2, 20, 48)
    padding = torch.zeros(2, 20, dtype=torch.bool)
    padding[0, 5:9] = True
    picks = model.pools[0]._sample_centroids(tokens, 10, padding)
    assert not set(picks[0].tolist()) & {5, 6, 7, 8}
    assert picks.shape == (2, 10) and all(len(set(p.tolist())) == 10 for p in picks)


def test_segment_mean_zero_rows_for_absent_ids_and_counts():
    values = torch.arange(12.0).view(1, 6, 2)
    labels = torch.tensor([[0, 0, 2, 2, 2, 0]])
    means, counts = segment_mean(values, labels, 4)
    assert counts.tolist() == [[3, 0, 3, 0]]
    assert torch.allclose(means[0, 0], values[0, [0, 1, 5]].mean(0))
    assert torch.equal(means[0, 1], torch.zeros(2)) and torch.equal(means[0, 3], torch.zeros(2))


def test_superpixels_on_grid_takes_the_top_left_pixel_of_each_cell():
    labels = torch.arange(64).view(1, 8, 8)
    assert superpixels_on_grid(labels, 4)[0].tolist() == labels[0, ::2, ::2].tolist()


def test_mixed_batch_pads_to_the_largest_id_like_the_official_code():
    model = build_cast("cast_micro", img_size=64).eval()
    sp = torch.zeros(2, 64, 64, dtype=torch.long)
    sp[0] = torch.arange(64).view(8, 8).repeat_interleave(8, 0).repeat_interleave(8, 1)  # 64 ids on the 8x8 grid
    sp[1] = sp[0] // 2  # 32 ids
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64), sp)
    assert out.stage_inputs.shape == (2, 65, 48)
    assert out.padding_mask[1, 32:].all() and not out.padding_mask[1, :32].any() and not out.padding_mask[0].any()
    # Padded tokens are zero features plus zero positions.
    assert torch.equal(out.stage_inputs[1, 33:], torch.zeros(32, 48))
    assert [t.shape[1] for t in out.stage_tokens] == [64, 16, 8, 4]


def test_vanished_interior_id_becomes_a_padded_token():
    model = build_cast("cast_micro", img_size=64).eval()
    sp = torch.arange(64).view(8, 8).repeat_interleave(8, 0).repeat_interleave(8, 1)[None].clone()
    sp[0, 8:16, 8:16] = 100  # id 9's cell is overwritten by a new id...
    sp[0, 9:16, 9:16] = 9  # ...and id 9 keeps only pixels that are not top-left of a cell
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64), sp)
    assert out.padding_mask.shape == (1, 101)
    assert out.padding_mask[0, 9] and not out.padding_mask[0, 100]


def test_official_variant_shapes_and_parameter_counts():
    assert {"cast_small", "cast_small_deep", "cast_base", "cast_base_deep"} <= set(list_variants())
    # The official models' totals (counted by running twke18/CAST's classes) include a 1000-way
    # head and the fixed position table.
    expected = {"cast_small": 28.34, "cast_small_deep": 35.44, "cast_base": 111.80, "cast_base_deep": 140.15}
    for name, millions in expected.items():
        with torch.device("meta"):
            model = build_cast(name, num_classes=1000)
        total = sum(p.numel() for p in model.parameters()) + model.stem.pos_embed.numel() + model.stem.cls_pos_embed.numel()
        assert abs(total / 1e6 - millions) < 0.01, (name, total)
    assert variant_config("cast_small_deep").depths == (6, 3, 3, 3)
    assert variant_config("cast_base").embed_dim == 768 and variant_config("cast_base").num_heads == 12


def test_sincos_table_layout():
    table = sincos_2d(28, 48)[0]
    k = 2 * 28 + 5  # row 2, column 5
    omega = 1.0 / 10000 ** (np.arange(12) / 12)
    expected = np.concatenate([np.sin(2 * omega), np.cos(2 * omega), np.sin(5 * omega), np.cos(5 * omega)])
    np.testing.assert_allclose(table[k].numpy(), expected, atol=1e-6)


def test_gradients_reach_every_trainable_parameter_and_the_last_pool_is_frozen():
    model = build_cast("cast_micro", img_size=64, num_classes=3, pool_dropout=0.0)
    sp = torch.randint(0, 30, (2, 64, 64))
    out = model(torch.randn(2, 3, 64, 64), sp)
    loss = out.logits.sum() + sum(t.sum() for t in out.pooled_tokens[:-1]) * 1e-3
    loss.backward()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith("pools.3.") for n in frozen)
    dead = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
    assert dead == []


def test_more_clusters_than_tokens_is_capped():
    model = build_cast("cast_micro", img_size=64).eval()
    sp = torch.zeros(1, 64, 64, dtype=torch.long)
    sp[0, :, 32:] = 1
    sp[0, 32:, :] += 2  # four superpixels, fewer than the 16 level-1 clusters
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64), sp)
    assert [a.shape[-1] for a in out.assignment_logits] == [4, 4, 4, 2]


def test_config_round_trip_and_validation():
    cfg = variant_config("cast_tiny")
    assert CASTConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        CASTConfig(embed_dim=50)
    with pytest.raises(ValueError):
        CASTConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_fps_never_repeats_a_pick_when_points_run_out():
    points = torch.zeros(1, 6, 3)
    points[0, 1] = 1.0  # two distinct positions, six points: the rest are duplicates of point 0
    picks = farthest_point_sample(points, 5)[0].tolist()
    assert picks == [0, 1, 2, 3, 4]


def test_more_clusters_than_valid_tokens_in_a_padded_batch():
    model = build_cast("cast_micro", img_size=64).eval()
    sp = torch.zeros(2, 64, 64, dtype=torch.long)
    sp[0] = torch.arange(64).view(8, 8).repeat_interleave(8, 0).repeat_interleave(8, 1)
    sp[1, :, 32:] = 1  # two superpixels: 62 of its 64 tokens are padding, 16 clusters requested
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64), sp)
    picks = out.centroids[0][1].tolist()
    assert len(set(picks)) == 16 and min(picks) >= 0 and {0, 1} <= set(picks)


def _two_images(side: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of two: 64 square superpixels, and 2 (the rest of its ids are batch padding)."""
    sp = torch.zeros(2, side, side, dtype=torch.long)
    sp[0] = torch.arange(64).view(8, 8).repeat_interleave(side // 8, 0).repeat_interleave(side // 8, 1)
    sp[1, :, side // 2:] = 1
    return torch.randn(2, 3, side, side), sp


def test_graph_pooling_runs_after_the_hybrid_stem():
    # Graph pooling reads only tokens and their padding, which every stem gives.
    torch.manual_seed(0)
    model = build_cast("cast_hybrid_micro", pooling="graph").eval()
    assert model.config.pooling == GraphPoolingConfig() and model.config.stem.kind == "lite0"
    with torch.no_grad():
        out = model(*_two_images())
    assert [tuple(a.shape) for a in out.assignment_logits] == [(2, 64, 16), (2, 16, 8), (2, 8, 4), (2, 4, 2)]
    assert out.padding_mask[1, 2:].all() and not out.padding_mask[1, :2].any()
    # The second image's level-1 picks start with its two real tokens, whatever its padding.
    assert {0, 1} <= set(out.centroids[0][1].tolist())


def test_a_pooling_that_cannot_follow_a_stem_is_refused_naming_both():
    with pytest.raises(ValueError, match="pooling 'merge' cannot follow stem 'conv'"):
        build_cast("cast_micro", pooling="merge")
    with pytest.raises(ValueError, match="pooling 'merge' with stem 'lite0'.*merge_taps"):
        build_cast("cast_hybrid_micro", stem_taps=(2, 4))  # three merge weights for two stem maps


def test_flat_overrides_land_in_the_part_they_belong_to():
    config = variant_config("cast_micro", img_size=64, pos_embed="learned", pool_dropout=0.0, num_classes=3)
    assert config.stem == ConvStemConfig(img_size=64, pos_embed="learned")
    assert config.pooling == GraphPoolingConfig(dropout=0.0) and config.num_classes == 3
    hybrid = variant_config("cast_tiny", stem="lite0", stem_taps=(2, 4), pooling="merge", merge_taps=(1.0, 0.5),
                            merge_tokens=0.5)
    # A new kind keeps the settings it shares with the old one (img_size) and starts from its defaults otherwise.
    assert hybrid.stem == LiteStemConfig(img_size=160, taps=(2, 4))
    assert hybrid.pooling == RegionMergingConfig(merge_taps=(1.0, 0.5), merge_tokens=0.5)
    assert variant_config("cast_tiny", stem=LiteStemConfig(), pooling=RegionMergingConfig()).stem == LiteStemConfig()
    # The hybrid stem has no position table to choose: asking for one is an error, not ignored.
    with pytest.raises(ValueError, match="'lite0' has no setting 'pos_embed'"):
        build_cast("cast_hybrid_micro", pos_embed="learned")
    with pytest.raises(ValueError, match="unknown CAST config key 'bogus'"):
        variant_config("cast_micro", bogus=1)


def test_img_size_is_the_conv_stems_square_input():
    model = build_cast("cast_micro", img_size=64).eval()
    with pytest.raises(ValueError, match="expects img_size 64"):
        model(torch.randn(1, 3, 96, 96), torch.zeros(1, 96, 96, dtype=torch.long))
    with pytest.raises(ValueError, match="multiple of the stem stride"):
        variant_config("cast_micro", img_size=60)


def test_format_1_flat_config_reads_as_nested():
    flat = {"embed_dim": 48, "depths": [1, 1, 1, 1], "num_heads": 4, "clusters": [16, 8, 4, 2], "img_size": 64,
            "pos_embed": "sincos", "stem": "lite0", "stem_taps": [2, 4, 6], "pooling": "merge", "pool_dropout": 0.0,
            "merge_colour": 1.0, "merge_taps": [1.0, 1.0, 1.0], "merge_tokens": 0.25}
    config = CASTConfig.from_flat(flat)
    # pos_embed had no effect on the lite0 stem (its tokens always carried its own sin-cos code): dropped.
    assert config.stem == LiteStemConfig(img_size=64, taps=(2, 4, 6))
    assert config.pooling == RegionMergingConfig(dropout=0.0, merge_taps=(1.0, 1.0, 1.0), merge_tokens=0.25)
    assert config.to_dict()["pooling"]["merge_tokens"] == 0.25
    official = CASTConfig.from_flat({"img_size": 96, "pos_embed": "learned", "stem_taps": [2], "merge_tokens": 1.0})
    assert official.stem == ConvStemConfig(img_size=96, pos_embed="learned") and official.pooling == GraphPoolingConfig()


def test_the_hybrid_stem_keeps_padding_out_of_attention():
    # In a batch, an image with fewer superpixels gets padding tokens; they must not change its result.
    torch.manual_seed(0)
    model = build_cast("cast_hybrid_micro", num_classes=5).eval()
    image, sp = _two_images()
    sp[1] = sp[0] % 20  # 20 ids: 44 padding tokens beside the first image's 64
    with torch.no_grad():
        batched = model(image, sp)
        alone = model(image[1:], sp[1:, :, :])
    assert batched.padding_mask[1, 20:].all() and not batched.padding_mask[1, :20].any()
    torch.testing.assert_close(batched.logits[1:], alone.logits, atol=1e-5, rtol=1e-5)
