"""Initial segments for CAST: SEEDS superpixels exactly as the official code computes them, or SLIC.

CAST's tokens start as superpixels. The official pipelines run OpenCV-contrib SEEDS on the
LAB-converted uint8 RGB image; ``SEEDS_MOCO`` and ``SEEDS_DEIT`` are their two recipes
(twke18/CAST ``moco-v3/suppix_utils/datasets_seeds.py`` and ``deit/datasets_seeds.py``). SLIC
(scikit-image) is offered for installs without OpenCV contrib; official checkpoints were trained with
SEEDS, so it changes their inputs.

SEEDS does not return exactly ``n_segments`` labels: it lays out a regular grid of blocks and the
number of superpixels is that grid's size (196 at 224x224, but 147 for a 100x300 image). Code must
read the count from the labels, never assume it.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np

from .errors import MissingDependencyError
from .labels import contiguous_labels

__all__ = ["PRESETS", "SEEDS_DEIT", "SEEDS_MOCO", "SLIC", "SuperpixelConfig", "compute_superpixels"]

METHODS = ("seeds", "slic")
MIN_SIDE = 8

_CONTRIB_HINT = (
    "SEEDS superpixels need OpenCV's contrib modules: pip install opencv-contrib-python-headless. "
    "Do not keep opencv-python or opencv-python-headless installed beside it: they share the cv2 package "
    "and whichever was installed last wins, so uninstall them first. Alternatively use method='slic', "
    "which needs only scikit-image."
)


@dataclass(frozen=True)
class SuperpixelConfig:
    """How to compute the initial superpixels. Fields of the other method are ignored.

    Attributes:
        method: "seeds" (OpenCV contrib, the official choice) or "slic" (scikit-image).
        n_segments: requested number of superpixels, a target rather than an exact count (SEEDS makes
            a regular block grid; SLIC drops and merges clusters).
        histogram_bins: SEEDS colour-histogram bins per LAB channel.
        iterations: refinement sweeps: SEEDS ``num_iterations``, SLIC ``max_num_iter``.
        prior: SEEDS boundary-smoothness prior, 0..5.
        num_levels: SEEDS block levels (OpenCV uses at least 2 whatever is asked).
        double_step: SEEDS extra block-update pass with a confidence threshold.
        compactness: SLIC colour vs. space trade-off (higher gives more regular shapes).
        sigma: SLIC Gaussian pre-smoothing width in pixels (0: none).
    """

    method: str = "seeds"
    n_segments: int = 196
    histogram_bins: int = 15
    iterations: int = 20
    prior: int = 2
    num_levels: int = 1
    double_step: bool = False
    compactness: float = 10.0
    sigma: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown superpixel method {self.method!r}; choose one of {', '.join(METHODS)}")
        for name, low in (("n_segments", 1), ("histogram_bins", 1), ("iterations", 1), ("prior", 0), ("num_levels", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"SuperpixelConfig.{name} must be an integer >= {low}, got {value!r}")
            object.__setattr__(self, name, int(value))  # numpy integers -> int, so to_dict stays JSON-able
        if self.prior > 5:
            raise ValueError(f"SuperpixelConfig.prior must be at most 5 (OpenCV clamps above), got {self.prior}")
        if not isinstance(self.double_step, (bool, np.bool_)):
            raise ValueError(f"SuperpixelConfig.double_step must be a bool, got {self.double_step!r}")
        object.__setattr__(self, "double_step", bool(self.double_step))
        for name, positive in (("compactness", True), ("sigma", False)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
                raise ValueError(f"SuperpixelConfig.{name} must be a finite number, got {value!r}")
            if value < 0 or (positive and value == 0):
                raise ValueError(f"SuperpixelConfig.{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")
            object.__setattr__(self, name, float(value))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SuperpixelConfig:
        """Inverse of ``to_dict``. Missing keys take their defaults; unknown keys are an error."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"unknown superpixel config keys {unknown}; known keys are {known}")
        return cls(**d)


# The official recipes: MoCo pretraining, linear probe and notebooks (15 bins, 20 iterations), and
# DeiT supervised training (5 bins, 15 iterations); see the module docstring for the files.
SEEDS_MOCO = SuperpixelConfig("seeds", 196, histogram_bins=15, iterations=20, prior=2, num_levels=1, double_step=False)
SEEDS_DEIT = SuperpixelConfig("seeds", 196, histogram_bins=5, iterations=15, prior=2, num_levels=1, double_step=False)
# scikit-image's own SLIC defaults (compactness 10, no smoothing, 10 iterations).
SLIC = SuperpixelConfig("slic", 196, iterations=10, compactness=10.0, sigma=0.0)

# By name, as training recipes write them ("preset": "SEEDS_DEIT"): one naming, the constants'.
PRESETS: dict[str, SuperpixelConfig] = {"SEEDS_MOCO": SEEDS_MOCO, "SEEDS_DEIT": SEEDS_DEIT, "SLIC": SLIC}


def compute_superpixels(rgb: np.ndarray, config: SuperpixelConfig) -> np.ndarray:
    """Superpixel labels of an RGB image.

    Args:
        rgb: (H, W, 3) uint8 RGB, H and W at least 8, any aspect ratio.
        config: method and parameters, e.g. ``SEEDS_MOCO``.

    Returns:
        (H, W) int32 labels covering 0..n-1 with every id present. The same input gives the same output.
        When SEEDS already returns contiguous ids (the usual case) they come back unchanged.

    For SEEDS, some requests make OpenCV hang or crash (an image too small for ``n_segments``, or a
    small ``n_segments`` on an elongated image). The request is then adjusted to the nearest one OpenCV
    handles: lowered when possible (8x8 with 196 requested gives 16 superpixels), else raised.

    Raises:
        MissingDependencyError: SEEDS requested but OpenCV contrib (``cv2.ximgproc``) is not installed.
        ValueError: ``rgb`` is not (H, W, 3) uint8 of at least 8x8.
    """
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        desc = f"{rgb.dtype} array of shape {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise ValueError(
            f"compute_superpixels expects an (H, W, 3) uint8 RGB array, got a {desc} "
            "(hierseg.imageio.load_image makes one)"
        )
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ValueError(f"superpixels need an image of at least {MIN_SIDE}x{MIN_SIDE} pixels, got {width}x{height}")
    labels = _seeds(rgb, config) if config.method == "seeds" else _slic(rgb, config)
    return contiguous_labels(labels)


def _seeds(rgb: np.ndarray, config: SuperpixelConfig) -> np.ndarray:
    cv2 = _import_cv2_contrib()
    height, width = rgb.shape[:2]
    count = _safe_seeds_request(height, width, config.n_segments, config.num_levels)
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2LAB)
    seeds = cv2.ximgproc.createSuperpixelSEEDS(
        width,
        height,
        3,
        count,
        num_levels=config.num_levels,
        prior=config.prior,
        histogram_bins=config.histogram_bins,
        double_step=config.double_step,
    )
    seeds.iterate(lab, config.iterations)
    return seeds.getLabels()


def _slic(rgb: np.ndarray, config: SuperpixelConfig) -> np.ndarray:
    from skimage.segmentation import slic

    return slic(
        rgb,
        n_segments=config.n_segments,
        compactness=config.compactness,
        max_num_iter=config.iterations,
        sigma=config.sigma,
        start_label=0,
        channel_axis=-1,
    )


def _import_cv2_contrib() -> Any:
    """Import cv2 on first use, so this module (and SLIC) work without OpenCV."""
    try:
        import cv2
    except ImportError as exc:
        raise MissingDependencyError(f"OpenCV is not installed. {_CONTRIB_HINT}") from exc
    if not hasattr(cv2, "ximgproc"):
        raise MissingDependencyError(f"OpenCV is installed without contrib modules (no cv2.ximgproc). {_CONTRIB_HINT}")
    return cv2


def _seeds_grid(height: int, width: int, n_segments: int, num_levels: int) -> int:
    """Number of superpixels OpenCV's SEEDS makes for this request, or 0 if it would hang or crash.

    Mirrors ``SuperpixelSEEDSImpl::initialize`` (opencv_contrib ximgproc/src/seeds.cpp), float32
    arithmetic included, because the failure modes are in C++ and cannot be caught from Python:
    the level search loops forever once it runs out of levels (8x8, 196 requested), a single level
    reads an uninitialised parent table (16x16, 196), and an empty top grid segfaults (9x31, 4).
    """
    f32 = np.float32
    n_segments = max(n_segments, 10)  # OpenCV's own lower bounds
    levels = max(num_levels, 2)
    rows = int(np.sqrt(f32(n_segments) * f32(height) / f32(width), dtype=f32))
    cols = rows * width // height
    if rows < 1 or cols < 1:
        return 0
    while levels >= 2:
        block_w = f32(width) / f32(cols) / f32(1 << (levels - 1))
        block_h = f32(height) / f32(rows) / f32(1 << (levels - 1))
        if block_w >= 1 and block_h >= 1:
            break
        levels -= 1
    else:
        return 0
    top_cols = (width // int(np.ceil(block_w))) >> (levels - 1)
    top_rows = (height // int(np.ceil(block_h))) >> (levels - 1)
    return top_rows * top_cols


def _safe_seeds_request(height: int, width: int, n_segments: int, num_levels: int) -> int:
    """The ``n_segments`` to hand OpenCV: the requested one whenever SEEDS handles it.

    Otherwise the smaller request that yields the most superpixels; failing that (small requests on
    elongated images), the smallest larger request that works. One always exists for sides >= 8: a
    request giving two block rows fits any aspect ratio.
    """
    if _seeds_grid(height, width, n_segments, num_levels):
        return n_segments
    # Requests below 10 all behave like 10 inside OpenCV, so the downward search stops there.
    ceiling = max(n_segments, 10)
    count, request = max((_seeds_grid(height, width, k, num_levels), k) for k in range(10, ceiling + 1))
    if count:
        return request
    return next(k for k in range(ceiling + 1, height * width + 1) if _seeds_grid(height, width, k, num_levels))

