"""Ultrametric contour maps (UCMs) as a family of segmentations, as the BSDS benchmark reads them.

The benchmark treats the thresholds of a UCM as a family of segmentations; for a hierarchy that
family is its list of levels. These helpers turn a UCM into such a family, which lets the region and
boundary metrics be checked on the benchmark's UCM inputs.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

LabelMap = NDArray[np.integer]
BoolMap = NDArray[np.bool_]
FloatArray = NDArray[np.float64]


def ucm_thresholds(n: int) -> FloatArray:
    """The benchmark's ``n`` evenly spaced UCM thresholds strictly inside (0, 1)."""
    return np.linspace(1.0 / (n + 1), 1.0 - 1.0 / (n + 1), n)


def ucm_region_levels(ucm2: NDArray[np.floating], thresholds: Sequence[float]) -> list[LabelMap]:
    """Segmentations of a double-resolution UCM (shape ``2H+1 x 2W+1``), one per threshold.

    As the benchmark does: 8-connected components of ``ucm2 <= t`` on the double grid, read at the pixel
    centres ``ucm2[1::2, 1::2]`` (MATLAB ``2:2:end``), which never lie on a contour.
    """
    eight = np.ones((3, 3), dtype=bool)
    return [ndimage.label(ucm2 <= t, structure=eight)[0][1::2, 1::2] for t in thresholds]


def ucm_boundary_maps(ucm2: NDArray[np.floating], thresholds: Sequence[float]) -> list[BoolMap]:
    """Boundary maps of a double-resolution UCM at image size: ``ucm2[2::2, 2::2] >= t`` (MATLAB ``3:2:end``)."""
    pb = ucm2[2::2, 2::2]
    return [pb >= t for t in thresholds]
