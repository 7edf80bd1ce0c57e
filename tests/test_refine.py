"""``Segmenter.refine``: test-time adaptation on one photo, in the library, the CLI and the app's API."""
from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from hierseg import load_segmenter
from hierseg.cli import main as cli_main
from hierseg.imageio import load_image
from hierseg.preprocess import batch_views
from hierseg.refine import (
    RefineConfig,
    augmented_view,
    learning_parameters,
    private_copy,
    refine_loss,
    refine_model,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "chelsea.jpg"
# Two small steps keep each refinement to a few seconds on CPU.
QUICK = RefineConfig(steps=2, views_per_step=2, lr=1e-3, time_budget_s=None)


@pytest.fixture(scope="module")
def segmenter():
    return load_segmenter("default", device="cpu")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    rgb = load_image(EXAMPLE)
    side = min(rgb.shape[:2])
    return np.ascontiguousarray(rgb[:side, :side])  # square: one crop of scale 1 is the whole photo


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_shared_model_is_bitwise_unchanged(segmenter, photo) -> None:
    before = _state(segmenter.model)
    first = segmenter(photo)
    refined = segmenter.refine(photo, config=QUICK)
    assert refined.meta["refine"]["steps_done"] == 2
    after = segmenter.model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    again = segmenter(photo)
    assert np.array_equal(first.prediction, again.prediction)
    # ... while the private copy did learn: its superpixel tokens, hence the leaves' evidence, differ (the
    # photo's prediction is the labeller's, from the frozen stem: refining leaves it as it was).
    assert not np.allclose(first.evidence[-1], refined.evidence[-1])
    np.testing.assert_allclose(first.prediction, refined.prediction, atol=1e-6)


def test_private_copy_shares_only_frozen_modules(segmenter) -> None:
    copy = private_copy(segmenter.model)
    learning = {id(p) for p in learning_parameters(copy)}
    original = {id(p) for p in segmenter.model.parameters()}
    assert learning and not learning & original  # everything that learns is the copy's own
    assert copy.stem.backbone is segmenter.model.stem.backbone and copy.head is segmenter.model.head
    assert all(not p.requires_grad for p in copy.stem.backbone.parameters())


@pytest.mark.slow
def test_same_seed_same_hierarchy_other_seed_other_one(segmenter, photo) -> None:
    a = segmenter.refine(photo, seed=3, config=QUICK)
    b = segmenter.refine(photo, seed=3, config=QUICK)
    c = segmenter.refine(photo, seed=4, config=QUICK)
    assert all(np.array_equal(x, y) for x, y in zip(a.label_maps, b.label_maps))
    assert np.array_equal(a.prediction, b.prediction)
    assert all(np.array_equal(x, y) for x, y in zip(a.evidence, b.evidence))
    assert a.meta["refine"]["losses"] == b.meta["refine"]["losses"]
    assert a.meta["refine"]["losses"] != c.meta["refine"]["losses"]  # the seed drives the views


@pytest.mark.slow
def test_concurrent_refinements_do_not_see_each_other(segmenter, photo) -> None:
    alone = segmenter.refine(photo, seed=5, config=QUICK)
    results: dict[int, np.ndarray] = {}

    def run(seed: int) -> None:
        results[seed] = segmenter.refine(photo, seed=seed, config=QUICK).prediction

    threads = [threading.Thread(target=run, args=(seed,)) for seed in (5, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_allclose(results[5], alone.prediction, rtol=0, atol=1e-6)


def test_objective_is_the_models_own_prediction(segmenter, photo) -> None:
    """No mask, no label: the only target is the model's prediction on the whole photo.

    A "view" identical to the photo (scale-1 crop of a square photo, no flip, no colour change)
    therefore has zero loss and zero gradient, whatever the photo shows.
    """
    identical = RefineConfig(steps=1, views_per_step=1, crop_scale=(1.0, 1.0), colour_jitter=0.0, flip=False,
                             segment_weight=0.0, time_budget_s=None)
    prepared = segmenter.prepare(photo)
    config, superpixels = segmenter.config.input, segmenter.config.superpixels
    _, report = refine_model(segmenter.model, prepared.rgb, prepared.view, config, superpixels, identical)
    assert report.losses == pytest.approx([0.0], abs=1e-6)
    copy = private_copy(segmenter.model).eval()
    view = augmented_view(prepared.rgb, config, superpixels, identical, np.random.default_rng(0))
    pixels, labels = batch_views([view])
    with torch.no_grad():
        target = copy(*batch_views([prepared.view])).logits
    refine_loss(copy, copy(pixels, labels), target, identical).backward()
    assert max(float(p.grad.abs().max()) for p in learning_parameters(copy) if p.grad is not None) < 1e-5
    # A real augmentation has a loss, so the zero above is not a loss that is always zero.
    _, report = refine_model(segmenter.model, prepared.rgb, prepared.view, config, superpixels,
                             replace(identical, crop_scale=(0.35, 0.5), flip=True))
    assert report.losses[0] > 1e-4


def test_segment_term_pulls_segments_towards_the_photo_prediction(segmenter, photo) -> None:
    prepared = segmenter.prepare(photo)
    output = segmenter.forward([prepared], all_stages=True)  # refine reads the cls logits
    target = output.logits
    with torch.inference_mode():  # the output is an inference-mode tensor
        with_segments = refine_loss(segmenter.model, output, target, RefineConfig(segment_weight=0.5))
        without = refine_loss(segmenter.model, output, target, RefineConfig(segment_weight=0.0))
    assert float(without) == pytest.approx(0.0, abs=1e-6)
    assert float(with_segments) > 1e-3


@pytest.mark.slow
def test_progress_and_time_budget(segmenter, photo) -> None:
    calls: list[tuple[int, int]] = []
    h = segmenter.refine(photo, steps=3, config=QUICK, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    # A budget smaller than one step: the first step runs, the rest are skipped, and it says so.
    h = segmenter.refine(photo, steps=5, config=replace(QUICK, time_budget_s=1e-3))
    assert h.meta["refine"]["steps_done"] == 1 and h.meta["refine"]["stopped_by_time_budget"]


def test_zero_steps_is_the_unrefined_segmentation(segmenter, photo) -> None:
    first = segmenter(photo)
    h = segmenter.refine(photo, steps=0, config=QUICK)
    assert all(np.array_equal(x, y) for x, y in zip(first.label_maps, h.label_maps))
    np.testing.assert_allclose(first.prediction, h.prediction, rtol=0, atol=1e-6)


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ValueError, match="steps"):
        RefineConfig(steps=-1)
    with pytest.raises(ValueError, match="crop_scale"):
        RefineConfig(crop_scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="view"):
        RefineConfig(views_per_step=0)


@pytest.mark.slow
def test_cli_refine(tmp_path: Path) -> None:
    assert cli_main(["segment", str(EXAMPLE), "--out", str(tmp_path), "--refine", "1", "--quiet"]) == 0
    tree = json.loads((tmp_path / "chelsea" / "tree.json").read_text())
    assert tree["meta"]["refine"]["steps_done"] == 1
    with pytest.raises(SystemExit):
        cli_main(["segment", str(EXAMPLE), "--out", str(tmp_path), "--refine", "-2"])
