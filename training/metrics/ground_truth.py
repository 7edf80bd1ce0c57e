"""Reading ground truth: BSDS500 ``.mat`` human segmentations, Pascal-Part person masks, Weizmann horse masks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
from numpy.typing import NDArray
from PIL import Image

LabelMap = NDArray[np.integer]
BoolMap = NDArray[np.bool_]


@dataclass(frozen=True)
class HumanAnnotations:
    """The human segmentations of one BSDS image and their boundary maps (same order)."""

    segmentations: tuple[LabelMap, ...]
    boundaries: tuple[BoolMap, ...]


def load_bsds_ground_truth(path: str | Path) -> HumanAnnotations:
    """Read a BSDS500 ``groundTruth/*.mat`` file."""
    entries = scipy.io.loadmat(str(path))["groundTruth"][0]
    segs = tuple(np.asarray(e["Segmentation"][0, 0], dtype=np.int64) for e in entries)
    bdrys = tuple(np.asarray(e["Boundaries"][0, 0]).astype(bool) for e in entries)
    return HumanAnnotations(segs, bdrys)


# Pascal-Part person labels (0 bg, 1 lower arm, 2 torso, 3 lower leg, 4 head, 5 upper leg, 6 upper arm)
# mapped to the three levels of the part hierarchy: body / upper-lower body / the six parts.
PASCAL_PART_LEVEL_LUTS: tuple[NDArray[np.int64], ...] = (
    np.array([0, 1, 1, 1, 1, 1, 1]),  # 0 bg, 1 body
    np.array([0, 1, 1, 2, 1, 2, 1]),  # 0 bg, 1 upper body {1,2,4,6}, 2 lower body {3,5}
    np.arange(7),  # the parts unchanged
)
PASCAL_PART_N_CLASSES: tuple[int, ...] = (2, 3, 7)
WEIZMANN_N_CLASSES = 2


def pascal_part_levels(mask: NDArray[np.integer]) -> list[LabelMap]:
    """Ground truth of a Pascal-Part person mask at its three levels, coarsest first."""
    if mask.min() < 0 or mask.max() > 6:
        raise ValueError("Pascal-Part person masks hold labels 0..6")
    return [lut[mask] for lut in PASCAL_PART_LEVEL_LUTS]


def load_pascal_part_levels(path: str | Path) -> list[LabelMap]:
    """Read a Pascal-Part ``gt_masks/*.png`` and return :func:`pascal_part_levels` of it."""
    return pascal_part_levels(np.asarray(Image.open(path), dtype=np.int64))


def load_weizmann_mask(path: str | Path) -> LabelMap:
    """Read a Weizmann horse mask as 0 background / 1 horse."""
    mask = np.asarray(Image.open(path), dtype=np.int64)
    if not np.isin(mask, (0, 1)).all():
        raise ValueError(f"{path}: expected values 0/1")
    return mask
