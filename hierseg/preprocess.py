"""The one preprocessing path: image -> the model's view -> superpixels -> normalised pixels.

Serving (``Segmenter``), training (``training/data.py``) and evaluation all go through
:func:`prepare_view`, so a checkpoint is always served exactly the kind of input it learned on. The
checkpoint's ``InputConfig`` says how the view is made:

* ``resize="square"``: the whole image squashed to ``size`` x ``size`` (the official CAST recipe; the
  conv stem and its fixed position table need a square grid);
* ``resize="long_side"``: aspect preserved, long side ``size`` (models with a convolutional backbone
  stem run on any shape). Training views are square crops of ``size``, a special case of this.

Superpixels are computed on the view itself (the uint8 pixels the model sees), never on a different
resolution, and the label maps go back to the photo's size by nearest sampling
(``hierseg.resize.resize_nearest``). The numpy resizing helpers live in ``hierseg.resize``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import torch

from .resize import fit_long_side, resize_nearest, resize_rgb
from .superpixels import SuperpixelConfig, compute_superpixels

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ("square", "long_side")
# Views never get a side below this: SEEDS and the stems need a few cells.
MIN_VIEW_SIDE = 16


@dataclass(frozen=True)
class InputConfig:
    """How a checkpoint wants its input: view size and shape, and the pixel normalisation."""

    size: int = 224
    resize: str = "square"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    # Split superpixels that SEEDS returns in several pieces, so every token is one connected region
    # (region-merging models rely on it to keep merged segments in one piece).
    connected_superpixels: bool = False

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"input resize must be one of {RESIZE_MODES}, not {self.resize!r}")
        if self.size < MIN_VIEW_SIDE:
            raise ValueError(f"input size must be at least {MIN_VIEW_SIDE}, got {self.size}")
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InputConfig":
        return cls(**d)


@dataclass
class PreparedImage:
    """One image ready for the model: the decoded photo and the model's view of it (``Segmenter.prepare``)."""

    rgb: np.ndarray  # (H, W, 3) uint8, the photo at its working size (label maps come back at this size)
    view: View  # what the model sees, superpixels computed on it
    timings_ms: dict[str, float]

    @property
    def superpixels(self) -> np.ndarray:
        """(H, W) int32 superpixel ids at the photo's size."""
        return resize_nearest(self.view.superpixels, *self.rgb.shape[:2])


@dataclass
class View:
    """One image as the model sees it."""

    rgb: np.ndarray  # (h, w, 3) uint8, the view
    superpixels: np.ndarray  # (h, w) int32 ids 0..S-1 computed on the view
    pixels: torch.Tensor  # (3, h, w) float, normalised

    @property
    def num_superpixels(self) -> int:
        return int(self.superpixels.max()) + 1


def view_size(height: int, width: int, config: InputConfig) -> tuple[int, int]:
    """(h, w) of the model's view of a height x width image."""
    if config.resize == "square":
        return config.size, config.size
    return fit_long_side(height, width, config.size, enlarge=True, min_side=MIN_VIEW_SIDE)


def normalise(rgb: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32, ``(x / 255 - mean) / std``."""
    pixels = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).float() / 255  # a copy: inputs may be read-only
    return (pixels - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def split_disconnected(labels: np.ndarray) -> np.ndarray:
    """Relabel so that every id is one 4-connected region (ids 0..n-1, in raster order of first pixels)."""
    from skimage.measure import label as connected_components

    return (connected_components(labels, connectivity=1, background=-1) - 1).astype(np.int32)


def prepare_view(rgb: np.ndarray, config: InputConfig, superpixels: SuperpixelConfig) -> View:
    """Resize an (H, W, 3) uint8 image to the model's view, compute its superpixels, normalise it."""
    height, width = view_size(*rgb.shape[:2], config)
    small = np.ascontiguousarray(resize_rgb(rgb, height, width))
    labels = compute_superpixels(small, superpixels)
    if config.connected_superpixels:
        labels = split_disconnected(labels)
    return View(rgb=small, superpixels=labels, pixels=normalise(small, config.mean, config.std))


def same_shape_groups(views: Sequence[View]) -> list[list[int]]:
    """Indices of ``views`` grouped by pixel shape, in first-seen order: only views of one shape share a
    batch (a padded image would change the stem's features near the padding)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, view in enumerate(views):
        groups.setdefault(tuple(view.pixels.shape), []).append(i)
    return list(groups.values())


def batch_views(views: Sequence[View]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack views into (B, 3, h, w) pixels and (B, h, w) int64 superpixels, padding to the largest view.

    Padding pixels are 0 (the mean colour after normalising) and padding superpixel ids are -1, which
    the model ignores.
    """
    height = max(v.pixels.shape[1] for v in views)
    width = max(v.pixels.shape[2] for v in views)
    pixels = torch.zeros(len(views), 3, height, width)
    labels = torch.full((len(views), height, width), -1, dtype=torch.int64)
    for i, v in enumerate(views):
        h, w = v.superpixels.shape
        pixels[i, :, :h, :w] = v.pixels
        labels[i, :h, :w] = torch.from_numpy(v.superpixels.astype(np.int64))
    return pixels, labels
