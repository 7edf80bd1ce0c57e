"""Train the grouping head of a region-merging checkpoint by recognition, and give the checkpoint a merge tree.

    python -m training.train_grouping CHECKPOINT OUT --data ../shared/data [--photos SPEC ...] [key=value ...]

No mask and no label. For every unlabelled training photo, seen exactly as the Segmenter sees it:

1. targets (cached per photo under ``OUT.work/targets``, so reruns and resumed runs skip this): the
   distillation teacher's penultimate map (EfficientNet-Lite0 ``conv_head`` + ``bn2``, i.e. the model's
   frozen stem followed by the teacher's head) on the view upsampled x2, averaged over each superpixel;
   kept as the within-photo Gram matrix of those features, standardised (area-weighted centred, unit
   total variance) and area-weighted. Upsampling lets the recognizer see each region at twice the size:
   at the view's own stride-32 cells the features of an object leak into a ring of background around it;
2. inputs: the model's superpixel tokens after stage 0 (the checkpoint is frozen);
3. loss: squared Frobenius distance between that Gram matrix and the same matrix of the head's
   embedding, i.e. superpixels the recognizer takes for the same thing come close and those it tells
   apart go apart, at every pair of the photo (the merge tree reads distances between region means).

Then the checkpoint is written to OUT with the head, ``grouping_dim``, ``merge_tokens`` and a ``tree``
readout (``hierseg.hierarchy.merge_tree.TreeConfig``) whose cut heights are calibrated on the
``calibrate`` photos (no mask: only segment counts are read) to geometric-mean counts ``level_counts``.
Size power, small-area guard, merge_tokens and the level counts are scalars chosen on BSDS500 train
masks (issue 17's research); the border term's sigma, eps and power, the size factor and how fast it falls
for crumbs (``small_power``; issue 23) were chosen by ``training.tune_tree`` on BSDS500 train and the dev
halves of horses and Pascal-Part (``docs/eval/segmentation/tree_tuning/results.md``); they are settings
here (``GroupingConfig``). Resumable: OUT.work/head.pt.

    python -m training.train_grouping CHECKPOINT OUT --data ../shared/data --recalibrate [key=value ...]

keeps CHECKPOINT's trained head and only sets the tree's cost settings and recalibrates its cut heights
(what a change of the merge cost needs: the heights are in the cost's units).
Both write the named ``qualities`` (name -> view size or overrides, e.g.
``qualities='{"fine": 480, "objects": {"tree": {"figure_weight": 0.43}}}'``): the same weights at another
view size or with other tree settings, with cut heights calibrated under them for the same counts
(``CheckpointConfig.qualities``; ``load_segmenter("NAME@fine")``).
Targets are computed per photo rather than per batch of augmented views: at x2 the teacher costs ~4 views,
and the cache lets 1,500 steps reuse 1,400 photos' targets (~2 min of training on one core).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hierseg import Segmenter, load_segmenter
from hierseg.checkpoints import LABELLER_WEIGHTS, CheckpointConfig, resolve_checkpoint, save_checkpoint
from hierseg.hierarchy.merge_tree import MergeTree, TreeConfig
from hierseg.imageio import load_image
from hierseg.model import CAST
from hierseg.model.hybrid.lite_stem import LITE0_STRIDES
from hierseg.model.hybrid.region_merge import weighted_standardise
from hierseg.model.segment_tokens import region_cells
from hierseg.preprocess import View, batch_views, normalise
from hierseg.resize import resize_rgb

from .data import list_images
from .teacher import TEACHER_MEAN, TEACHER_STD, Teacher


# The settings of GroupingConfig that are the tree's cost (TreeConfig fields of the same names).
TREE_COST = ("size_power", "small_area", "small_power", "border_sigma", "border_eps", "border_power")


@dataclass(frozen=True)
class GroupingConfig:
    """A grouping run (plain data; ``key=value`` on the command line overrides a field)."""

    photos: tuple[str, ...] = ("images:bsds500/images:train", "caltech101:caltech101_160:train")  # training splits
    max_per_spec: int = 1200  # at most this many photos of each spec (a fixed random subset)
    target_scale: int = 2  # the teacher sees the view upsampled this much
    dim: int = 32  # the head's embedding width (grouping_dim)
    steps: int = 1500
    batch: int = 16  # photos per step
    lr: float = 2e-3
    seed: int = 0
    merge_tokens: float = 3.0  # weight of the embedding in the tree's metric
    size_power: float = 0.7  # the tree's size factor (TreeConfig); 0.7 / 0.08 re-chosen with the border term
    small_area: float = 0.08
    small_power: float = 1.3  # the size factor's fall below small_area (TreeConfig; 1: Ward's), chosen by tune_tree (issue 23)
    border_sigma: float = 2.0  # the tree's border term (TreeConfig), chosen by training.tune_tree on training splits
    border_eps: float = 0.05
    border_power: float = 1.0
    level_counts: tuple[int, ...] = (4, 10, 25)  # geometric-mean segments per merged level on `calibrate`
    calibrate: str = "images:bsds500/images:train"
    # name -> view size (px), or the quality's overrides of "input" / "superpixels" / "tree" settings; calibrated too
    qualities: dict[str, Any] = dataclasses.field(default_factory=dict)
    threads: int = 1

    def replace(self, **changes: str) -> GroupingConfig:
        """A copy with ``key=value`` strings parsed as JSON (bare words as strings)."""
        known = {f.name: f for f in dataclasses.fields(self)}
        parsed = {}
        for key, text in changes.items():
            if key not in known:
                raise ValueError(f"unknown grouping setting {key!r}; known: {', '.join(known)}")
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                value = text
            parsed[key] = tuple(value) if isinstance(value, list) else value
        return dataclasses.replace(self, **parsed)


def weighted_gram(x: torch.Tensor, areas: torch.Tensor) -> torch.Tensor:
    """(S, S) Gram matrix of the rows standardised as the merge metric does (``weighted_standardise``), each
    scaled by the square root of its area share."""
    share = areas / areas.sum()
    rows = weighted_standardise(x[None], share[None])[0] * share.sqrt()[:, None]
    return rows @ rows.T


def gram_loss(embedding: torch.Tensor, target: torch.Tensor, areas: torch.Tensor) -> torch.Tensor:
    """Squared Frobenius distance of the embedding's weighted Gram matrix to ``target``: blind to the
    embedding's scale, offset and rotation, as the merge tree (standardised per photo) is."""
    return (weighted_gram(embedding, areas) - target).square().sum()


@torch.no_grad()
def teacher_superpixel_features(segmenter: Segmenter, teacher: Teacher, view: View, scale: int) -> torch.Tensor:
    """(S, 1280) float64: the teacher's penultimate map on ``view`` upsampled ``scale`` times (through the
    model's frozen stem, which is the teacher's body), averaged over each superpixel's cells."""
    h, w = view.rgb.shape[:2]
    big = normalise(resize_rgb(view.rgb, h * scale, w * scale), segmenter.config.input.mean, segmenter.config.input.std)
    feature_map = teacher.head_map(segmenter.model.stem.backbone(big[None])[-1])
    _, superpixels = batch_views([view])
    big_superpixels = F.interpolate(superpixels[:, None].float(), scale_factor=scale, mode="nearest")[:, 0].long()
    cells = region_cells(big_superpixels, tuple(feature_map.shape[-2:]), LITE0_STRIDES[-1])[0]
    return (cells / cells.sum(-1, keepdim=True).clamp(min=1)).double() @ feature_map[0].flatten(1).T.double()


@torch.no_grad()
def photo_targets(segmenter: Segmenter, teacher: Teacher, rgb: np.ndarray, scale: int) -> dict[str, np.ndarray]:
    """Stage-0 tokens, areas and the teacher's Gram target of one photo, as the Segmenter sees it."""
    prepared = segmenter.prepare(rgb)
    out = segmenter.forward([prepared])
    areas = out.regions.areas[0].double()
    pooled = teacher_superpixel_features(segmenter, teacher, prepared.view, scale)
    return {"tokens": out.stage_tokens[0][0].numpy().astype(np.float16), "areas": areas.numpy().astype(np.float32),
            "gram": weighted_gram(pooled, areas).numpy().astype(np.float32)}


def build_cache(segmenter: Segmenter, photos: list[Path], folder: Path, scale: int) -> list[Path]:
    """Targets of every photo in ``folder`` (one NPZ each, written once)."""
    teacher = Teacher(TEACHER_MEAN, TEACHER_STD)
    folder.mkdir(parents=True, exist_ok=True)
    files, t0 = [], time.time()
    for k, path in enumerate(photos):
        target = folder / f"{k:06d}.npz"
        if not target.exists():
            partial = folder / f"{k:06d}.tmp.npz"
            np.savez(partial, **photo_targets(segmenter, teacher, load_image(path), scale))
            partial.replace(target)
        files.append(target)
        if k % 100 == 0:
            print(f"targets {k}/{len(photos)} {time.time() - t0:.0f}s", flush=True)
    return files


def train_head(model: CAST, files: list[Path], config: GroupingConfig, work: Path) -> None:
    """Fit ``model.grouping_head`` to the cached targets; resumable from ``work/head.pt``."""
    head = model.grouping_head
    photos = []
    for f in files:
        z = np.load(f)
        photos.append((torch.from_numpy(z["tokens"].astype(np.float32)), torch.from_numpy(z["areas"]).double(),
                       torch.from_numpy(z["gram"]).double()))
    optimiser = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=0.01)
    state_file, step = work / "head.pt", 0
    if state_file.exists():
        state = torch.load(state_file, weights_only=True)
        head.load_state_dict(state["head"])
        optimiser.load_state_dict(state["optimiser"])
        step = int(state["step"])
    rng = np.random.default_rng(config.seed + step)
    head.train()
    t0, running = time.time(), []
    while step < config.steps:
        warmup = min(1.0, (step + 1) / 100)
        for group in optimiser.param_groups:
            # float(): a numpy scalar in the optimiser state would make head.pt unreadable with weights_only
            group["lr"] = float(config.lr * warmup * 0.5 * (1 + np.cos(np.pi * step / config.steps)))  # cosine
        chosen = rng.choice(len(photos), min(config.batch, len(photos)), replace=False)
        loss = torch.stack([gram_loss(head(photos[i][0]).double(), photos[i][2], photos[i][1]) for i in chosen]).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        running.append(float(loss.detach()))
        step += 1
        if step % 100 == 0 or step == config.steps:
            print(f"step {step}/{config.steps} loss {np.mean(running):.4f} {time.time() - t0:.0f}s", flush=True)
            running = []
            torch.save({"head": head.state_dict(), "optimiser": optimiser.state_dict(), "step": step}, state_file)
    head.eval()


def calibrate_heights(segmenter: Segmenter, photos: list[Path], counts: tuple[int, ...]) -> tuple[float, ...]:
    """Cut heights whose cuts have geometric-mean segment counts ``counts`` over ``photos`` (no mask read)."""
    trees = []
    for path in photos:
        prepared = segmenter.prepare(load_image(path))
        trees.append(segmenter.merge_tree(prepared, segmenter.forward([prepared]), 0))
    return heights_for_counts(trees, counts)


def heights_for_counts(trees: list[MergeTree], counts: tuple[int, ...]) -> tuple[float, ...]:
    """Cut heights whose cuts of ``trees`` have geometric-mean segment counts ``counts``."""
    grid = np.geomspace(1e-7, 1.0, 800)[::-1]  # the border term scales costs down to ~eps^power of Ward's
    mean_log = np.array([[np.log(t.count_at(g)) for g in grid] for t in trees]).mean(0)
    return tuple(float(grid[min(np.searchsorted(mean_log, np.log(k)), len(grid) - 1)]) for k in counts)


def calibrated_qualities(model: CAST, config: CheckpointConfig, grouping: GroupingConfig, data: Path) -> dict[str, Any]:
    """``CheckpointConfig.qualities`` for ``grouping.qualities``: per name, its overrides (a bare number is
    the view size) and the cut heights that give the same counts under them."""
    photos = list_images(grouping.calibrate, data).paths
    qualities = {}
    for name, spec in grouping.qualities.items():
        overrides = {"input": {"size": int(spec)}} if isinstance(spec, (int, float)) else {k: dict(v) for k, v in spec.items()}
        view = dataclasses.replace(config, qualities={name: overrides}).with_quality(name)
        heights = calibrate_heights(Segmenter(model, view, device="cpu", labeller=None), photos, grouping.level_counts)
        qualities[name] = {**overrides, "tree": {**overrides.get("tree", {}), "thresholds": list(heights)}}
    return qualities


def recalibrate(base: Segmenter, tree: TreeConfig, config: GroupingConfig, args: argparse.Namespace, command: str) -> None:
    """Write ``args.out``: ``base`` with the tree's cost settings of ``tree`` and cut heights calibrated for them."""
    if base.config.tree is None or base.model.grouping_head is None:
        raise SystemExit(f"{args.checkpoint} has no trained grouping head and merge tree to recalibrate")
    serving = Segmenter(base.model, dataclasses.replace(base.config, tree=tree), device="cpu", labeller=None)
    heights = calibrate_heights(serving, list_images(config.calibrate, args.data).paths, config.level_counts)
    settings = {k: getattr(config, k) for k in (*TREE_COST, "level_counts", "calibrate", "qualities")}
    provenance = {**base.config.provenance, "tree_recalibrated": {"command": command, "config": settings}}
    final = dataclasses.replace(base.config, provenance=provenance, tree=dataclasses.replace(tree, thresholds=heights))
    final = dataclasses.replace(final, qualities=calibrated_qualities(base.model, final, config, args.data))
    labeller = resolve_checkpoint(args.checkpoint) / LABELLER_WEIGHTS
    save_checkpoint(base.model, final, args.out)
    if labeller.is_file() and not (args.out / LABELLER_WEIGHTS).is_file():
        shutil.copy2(labeller, args.out / LABELLER_WEIGHTS)
    print(f"wrote {args.out}: cut heights {heights}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a region-merging checkpoint (name or folder)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, required=True, help="the data root the photo specs are relative to")
    parser.add_argument("--recalibrate", action="store_true",
                        help="keep CHECKPOINT's trained head: only set the tree's cost settings and calibrate its cut heights")
    parser.add_argument("overrides", nargs="*", help="key=value settings of GroupingConfig (JSON values)")
    args = parser.parse_intermixed_args(argv)
    config = GroupingConfig().replace(**dict(item.split("=", 1) for item in args.overrides))
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    base = load_segmenter(args.checkpoint, device="cpu")
    tree = TreeConfig(thresholds=(1.0,), **{k: getattr(config, k) for k in TREE_COST})
    command = "python -m training.train_grouping " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.recalibrate:
        recalibrate(base, tree, config, args, command)
        return
    model = CAST(base.config.model.replace(grouping_dim=config.dim, merge_tokens=config.merge_tokens))
    missing, unexpected = model.load_state_dict(base.model.state_dict(), strict=False)
    if unexpected or any(not k.startswith("grouping_head.") for k in missing):
        raise SystemExit(f"{args.checkpoint} does not fit a grouping head: missing {missing[:3]}, unexpected {unexpected[:3]}")
    model.eval()
    work = args.out.with_name(args.out.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    photos: list[Path] = []
    for spec in config.photos:
        paths = list_images(spec, args.data).paths
        keep = sorted(rng.choice(len(paths), min(len(paths), config.max_per_spec), replace=False))
        photos += [paths[i] for i in keep]
    files = build_cache(base, photos, work / "targets", config.target_scale)
    train_head(model, files, config, work)
    serving = Segmenter(model, dataclasses.replace(base.config, model=model.config, tree=tree), device="cpu",
                        labeller=None)
    heights = calibrate_heights(serving, list_images(config.calibrate, args.data).paths, config.level_counts)
    provenance = {**base.config.provenance, "grouping": {
        "command": command, "config": dataclasses.asdict(config), "photos": len(photos),
        "target": f"teacher penultimate map on the view x{config.target_scale}, within-photo Gram; no mask"}}
    final = dataclasses.replace(base.config, model=model.config, name=args.out.name, provenance=provenance,
                                tree=dataclasses.replace(tree, thresholds=heights))
    final = dataclasses.replace(final, qualities=calibrated_qualities(model, final, config, args.data))
    save_checkpoint(model, final, args.out)
    labeller = resolve_checkpoint(args.checkpoint) / LABELLER_WEIGHTS
    if labeller.is_file():  # the config's labeller entry needs its weights beside the model's
        shutil.copy2(labeller, args.out / LABELLER_WEIGHTS)
    print(f"wrote {args.out}: cut heights {heights}")


if __name__ == "__main__":
    main()
