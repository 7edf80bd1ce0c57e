"""``Segmenter``: the one public entry. Image in, part-whole ``Hierarchy`` out.

Data flows one way: image -> superpixels -> tokens -> levels -> Hierarchy.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from .checkpoints import CheckpointConfig, load_checkpoint, resolve_checkpoint
from .evidence import image_prediction, node_evidence
from .hierarchy import Hierarchy
from .imageio import ImageSource, load_image
from .model import CAST, CASTOutput, level_assignments
from .model.segment_tokens import superpixels_on_grid
from .superpixels import compute_superpixels

# Superpixels are computed at most at this size (long side); the label maps come back at the loaded
# image's size through the superpixel map, so boundaries stay sharp without paying SEEDS on 20 MP.
SUPERPIXEL_MAX_SIDE = 1024


@dataclass
class PreparedImage:
    """One image ready for the model."""

    rgb: np.ndarray  # (H, W, 3) uint8 at the working size
    superpixels: np.ndarray  # (H, W) int32 ids 0..S-1 at the working size
    pixels: torch.Tensor  # (3, size, size) normalised model input
    grid: torch.Tensor  # (g, g) int64 superpixel ids on the feature grid
    timings_ms: dict[str, float]


def model_input(rgb: np.ndarray, size: int, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, size, size) normalised float tensor: the whole image squashed to a square."""
    resized = np.array(Image.fromarray(rgb).resize((size, size), Image.BILINEAR))
    pixels = torch.from_numpy(resized).permute(2, 0, 1).float() / 255
    return (pixels - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Segmenter:
    """Run a CAST checkpoint on photos.

    ``segmenter(image)`` accepts a path, bytes, a PIL image or a numpy array (any mode; EXIF
    orientation applied) and returns a ``Hierarchy`` whose label maps have the loaded image's size
    (images with a side over ``imageio``'s working limit are downscaled first; ``h.meta`` records it).
    """

    def __init__(self, model: CAST, config: CheckpointConfig, device: str | torch.device = "auto") -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.config = config

    @property
    def class_names(self) -> list[str]:
        return self.config.class_names

    @property
    def input_size(self) -> int:
        return self.config.model.img_size

    def prepare(self, image: ImageSource) -> PreparedImage:
        """Decode, compute superpixels, and build the model input of one image."""
        t0 = time.perf_counter()
        rgb = load_image(image)
        t1 = time.perf_counter()
        superpixels = self._superpixels(rgb)
        t2 = time.perf_counter()
        pixels = model_input(rgb, self.input_size, self.config.mean, self.config.std)
        grid = superpixels_on_grid(torch.from_numpy(superpixels)[None].long(), self.config.model.grid_size)[0]
        t3 = time.perf_counter()
        timings = {"decode": (t1 - t0) * 1e3, "superpixels": (t2 - t1) * 1e3, "preprocess": (t3 - t2) * 1e3}
        return PreparedImage(rgb=rgb, superpixels=superpixels, pixels=pixels, grid=grid, timings_ms=timings)

    def _superpixels(self, rgb: np.ndarray) -> np.ndarray:
        height, width = rgb.shape[:2]
        # Keep the short side usable for SEEDS even on extremely elongated images.
        scale = max(SUPERPIXEL_MAX_SIDE / max(height, width), 16 / min(height, width))
        if scale >= 1:
            return compute_superpixels(rgb, self.config.superpixels)
        small = (max(1, round(width * scale)), max(1, round(height * scale)))
        labels = compute_superpixels(np.asarray(Image.fromarray(rgb).resize(small, Image.BILINEAR)), self.config.superpixels)
        # Nearest upsampling of the label map keeps ids exact; every id survives because each low-res
        # pixel owns at least one full-res pixel.
        rows = np.minimum((np.arange(height) * small[1]) // height, small[1] - 1)
        cols = np.minimum((np.arange(width) * small[0]) // width, small[0] - 1)
        return labels[rows[:, None], cols[None, :]]

    @torch.inference_mode()
    def forward(self, prepared: Sequence[PreparedImage]) -> CASTOutput:
        """Run the model on prepared images as one batch (the grid maps are padded like the official code)."""
        pixels = torch.stack([p.pixels for p in prepared]).to(self.device)
        grids = torch.stack([p.grid for p in prepared]).to(self.device)
        return self.model(pixels, grids)

    def readout(self, prepared: PreparedImage, output: CASTOutput, index: int, meta: dict[str, Any] | None = None) -> Hierarchy:
        """Turn image ``index`` of a batch output into a Hierarchy."""
        n_superpixels = int(prepared.superpixels.max()) + 1
        logits = [a[index].float() for a in output.assignment_logits]
        return Hierarchy.from_assignments(
            superpixels=prepared.superpixels,
            assignments=level_assignments(logits, n_superpixels),
            evidence=node_evidence(self.model, output, index, n_superpixels),
            class_names=self.class_names,
            prediction=image_prediction(output, index),
            meta=meta,
        )

    def __call__(self, image: ImageSource) -> Hierarchy:
        return self.segment_batch([image])[0]

    def segment_batch(self, images: Iterable[ImageSource], batch_size: int = 16) -> list[Hierarchy]:
        """Segment several images, ``batch_size`` at a time through the model.

        Images in one batch are padded to the same token count, exactly as the official code pads;
        like there, padding tokens take part in attention, so a batched result can differ from a
        single-image one in the last digits (and, rarely, in an argmax tie).
        """
        images = list(images)
        results: list[Hierarchy] = []
        for start in range(0, len(images), batch_size):
            prepared = [self.prepare(image) for image in images[start:start + batch_size]]
            t0 = time.perf_counter()
            output = self.forward(prepared)
            forward_ms = (time.perf_counter() - t0) * 1e3 / len(prepared)
            for i, item in enumerate(prepared):
                t1 = time.perf_counter()
                h = self.readout(item, output, i)
                timings = {**item.timings_ms, "model": forward_ms, "hierarchy": (time.perf_counter() - t1) * 1e3}
                h.meta.update(self._meta(item, timings))
                results.append(h)
        return results

    def _meta(self, item: PreparedImage, timings: dict[str, float]) -> dict[str, Any]:
        return {
            "checkpoint": self.config.name,
            "image_size": [int(item.rgb.shape[1]), int(item.rgb.shape[0])],
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
    return Segmenter(model, config, device=resolved)
