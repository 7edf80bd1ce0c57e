"""Superpixels: official SEEDS parity, label contract, OpenCV's unsafe sizes, config round trips."""

import dataclasses
import importlib.util
import json
import sys
import types

import numpy as np
import pytest
from skimage import data as skdata

import hierseg.superpixels as sp
from conftest import shared_data
from hierseg.errors import MissingDependencyError
from hierseg.labels import contiguous_labels, run_lengths, run_starts
from hierseg.superpixels import PRESETS, SEEDS_DEIT, SEEDS_MOCO, SLIC, SuperpixelConfig, compute_superpixels

BOTH = [SEEDS_MOCO, SLIC]


def _require_seeds():
    """cv2 with its contrib modules, or skip: SEEDS tests cannot run without them."""
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "ximgproc"):
        pytest.skip("OpenCV contrib (cv2.ximgproc) is not installed")
    return cv2


def _photo(height: int, width: int) -> np.ndarray:
    """A real photo crop (skimage's astronaut): SLIC on pure noise degenerates to a single segment."""
    return np.ascontiguousarray(skdata.astronaut()[:height, :width])


def _assert_contiguous(labels: np.ndarray, shape: tuple[int, int]) -> None:
    assert labels.shape == shape and labels.dtype == np.int32
    assert labels.min() == 0
    np.testing.assert_array_equal(np.unique(labels), np.arange(labels.max() + 1))


# ---------------------------------------------------------------- parity with the official call


@pytest.mark.parametrize("name, n_segments", [("moco_sp196_astronaut.npz", 196), ("moco_sp64_chelsea.npz", 64)])
def test_seeds_reproduces_the_official_superpixels(name, n_segments):
    _require_seeds()
    fixture = np.load(shared_data("cast_parity") / name)
    labels = compute_superpixels(fixture["image_u8"][0], dataclasses.replace(SEEDS_MOCO, n_segments=n_segments))
    np.testing.assert_array_equal(labels, fixture["superpixels"][0])
    assert labels.max() + 1 == n_segments  # a square 224 image gets exactly the requested grid


def test_presets_are_the_official_recipes():
    assert SEEDS_MOCO == SuperpixelConfig("seeds", 196, 15, 20, 2, 1, False)
    assert SEEDS_DEIT == SuperpixelConfig("seeds", 196, 5, 15, 2, 1, False)
    assert SLIC.method == "slic" and SLIC.n_segments == 196
    assert PRESETS == {"SEEDS_MOCO": SEEDS_MOCO, "SEEDS_DEIT": SEEDS_DEIT, "SLIC": SLIC}
    assert all(getattr(sp, name) is config for name, config in PRESETS.items()), "one naming: the constants'"


# ---------------------------------------------------------------- the label contract


@pytest.mark.parametrize("config", BOTH, ids=lambda c: c.method)
@pytest.mark.parametrize("size", [(224, 224), (150, 310), (310, 150), (8, 8), (8, 57), (33, 9)])
def test_labels_are_contiguous_for_any_size(config, size):
    if config.method == "seeds":
        _require_seeds()
    labels = compute_superpixels(_photo(*size), config)
    _assert_contiguous(labels, size)
    assert labels.max() >= 1  # a real photo always splits


@pytest.mark.parametrize("config", [SEEDS_MOCO, SEEDS_DEIT, SLIC], ids=["moco", "deit", "slic"])
def test_deterministic(config):
    if config.method == "seeds":
        _require_seeds()
    rgb = _photo(160, 200)
    first = compute_superpixels(rgb, config)
    np.testing.assert_array_equal(compute_superpixels(rgb.copy(), config), first)


def test_seeds_count_is_the_grid_not_the_request():
    _require_seeds()
    assert compute_superpixels(_photo(100, 300), SEEDS_MOCO).max() + 1 == 147  # 7 x 21 blocks, not 196
    assert compute_superpixels(_photo(224, 224), SEEDS_DEIT).max() + 1 == 196


def test_slic_follows_n_segments():
    few = compute_superpixels(_photo(128, 128), SuperpixelConfig("slic", 16)).max() + 1
    many = compute_superpixels(_photo(128, 128), SuperpixelConfig("slic", 256)).max() + 1
    assert few < 40 < many


def test_relabelling_matches_np_unique_and_keeps_contiguous_labels():
    gappy = np.array([[7, 7, 2], [9, 2, 40]])
    np.testing.assert_array_equal(contiguous_labels(gappy), np.unique(gappy, return_inverse=True)[1].reshape(2, 3))
    ordered = np.array([[0, 1], [2, 1]], np.int32)
    np.testing.assert_array_equal(contiguous_labels(ordered), ordered)


@pytest.mark.parametrize(
    "rgb, message",
    [
        (np.zeros((7, 100, 3), np.uint8), "at least 8x8"),
        (np.zeros((32, 32, 3), np.float32), "uint8"),
        (np.zeros((32, 32), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((32, 32, 4), np.uint8), r"\(H, W, 3\)"),
        ([[0, 0, 0]], "list"),
    ],
)
def test_rejects_bad_images(rgb, message):
    with pytest.raises(ValueError, match=message):
        compute_superpixels(rgb, SLIC)


# ---------------------------------------------------------------- sizes OpenCV's SEEDS cannot handle


def test_grid_model_matches_opencv():
    cv2 = _require_seeds()
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(300):
        height, width = (int(v) for v in rng.integers(8, 700, size=2))
        n, levels = int(rng.choice([4, 10, 64, 196, 1024])), int(rng.integers(1, 4))
        expected = sp._seeds_grid(height, width, n, levels)
        if expected:  # constructing an unsafe one can hang, so only the safe ones are compared
            seeds = cv2.ximgproc.createSuperpixelSEEDS(width, height, 3, n, levels, 2, 5, False)
            assert seeds.getNumberOfSuperpixels() == expected, (height, width, n, levels)
            checked += 1
    assert checked > 200


def test_known_hangs_and_crashes_are_detected():
    assert sp._seeds_grid(8, 8, 196, 1) == 0  # OpenCV loops forever
    assert sp._seeds_grid(16, 16, 196, 1) == 0  # OpenCV segfaults in iterate
    assert sp._seeds_grid(9, 31, 4, 1) == 0  # empty top grid, segfault
    assert sp._seeds_grid(224, 224, 196, 1) == 196


def test_tiny_and_elongated_images_get_a_working_request():
    _require_seeds()
    assert sp._safe_seeds_request(224, 224, 196, 1) == 196  # safe requests are never touched
    assert sp._safe_seeds_request(8, 8, 196, 1) < 196  # lowered when the image is too small
    assert sp._safe_seeds_request(8, 4000, 1, 1) > 10  # raised when nothing smaller grids
    rng = np.random.default_rng(0)
    for height, width, n in [(8, 8, 196), (16, 16, 196), (9, 31, 4), (12, 40, 1), (8, 2000, 196), (2000, 8, 196)]:
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        _assert_contiguous(compute_superpixels(rgb, SuperpixelConfig(n_segments=n)), (height, width))


def test_blocks_emptied_by_seeds_are_closed_up():
    cv2 = _require_seeds()
    rgb = _photo(8, 8)
    request = sp._safe_seeds_request(8, 8, 196, 1)
    seeds = cv2.ximgproc.createSuperpixelSEEDS(8, 8, 3, request, num_levels=1, prior=2, histogram_bins=15)
    seeds.iterate(cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB), 20)
    raw = seeds.getLabels()
    # On this tiny crop, pixel updates empty some of the 16 grid blocks, leaving gaps in the raw ids.
    assert seeds.getNumberOfSuperpixels() == 16 and len(np.unique(raw)) < 16
    labels = compute_superpixels(rgb, SEEDS_MOCO)
    _assert_contiguous(labels, (8, 8))
    np.testing.assert_array_equal(labels, np.unique(raw, return_inverse=True)[1].reshape(8, 8))


# ---------------------------------------------------------------- missing OpenCV contrib


def test_missing_opencv_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes `import cv2` raise ImportError
    with pytest.raises(MissingDependencyError, match="pip install opencv-contrib-python-headless") as info:
        compute_superpixels(_photo(32, 32), SEEDS_MOCO)
    assert "opencv-python" in str(info.value) and isinstance(info.value, ImportError)
    _assert_contiguous(compute_superpixels(_photo(32, 32), SLIC), (32, 32))  # SLIC needs no OpenCV


def test_opencv_without_contrib(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", types.ModuleType("cv2"))
    with pytest.raises(MissingDependencyError, match="no cv2.ximgproc"):
        compute_superpixels(_photo(32, 32), SEEDS_MOCO)


def test_module_imports_without_opencv(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    spec = importlib.util.spec_from_file_location("hierseg._superpixels_copy", sp.__file__)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)  # would raise ImportError if cv2 were imported at module level
    assert module.SEEDS_MOCO.histogram_bins == 15


# ---------------------------------------------------------------- config round trips


@pytest.mark.parametrize("config", list(PRESETS.values()), ids=list(PRESETS))
def test_config_json_round_trip(config):
    restored = SuperpixelConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config


def test_from_dict_fills_defaults_and_normalises_numbers():
    config = SuperpixelConfig.from_dict({"method": "slic", "n_segments": np.int64(100), "compactness": 20})
    assert config.n_segments == 100 and type(config.n_segments) is int
    assert config.compactness == 20.0 and type(config.compactness) is float
    json.dumps(config.to_dict())


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"colour_space": "lab"}, r"unknown superpixel config keys \['colour_space'\]"),
        ({"method": "quickshift"}, "unknown superpixel method 'quickshift'"),
        ({"n_segments": 0}, "n_segments must be an integer >= 1"),
        ({"n_segments": 19.5}, "n_segments must be an integer"),
        ({"iterations": True}, "iterations must be an integer"),
        ({"prior": 6}, "prior must be at most 5"),
        ({"double_step": "yes"}, "double_step must be a bool"),
        ({"compactness": 0}, "compactness must be > 0"),
        ({"sigma": -1.0}, "sigma must be >= 0"),
        ({"sigma": float("nan")}, "sigma must be a finite number"),
    ],
)
def test_from_dict_rejects_bad_configs(changes, message):
    with pytest.raises(ValueError, match=message):
        SuperpixelConfig.from_dict({**SEEDS_MOCO.to_dict(), **changes})


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        SEEDS_MOCO.n_segments = 10


def test_run_lengths_decode_back_and_runs_never_cross_rows():
    """The one run-length primitive (hover maps, COCO RLE and the label-map statistics use it)."""
    rng = np.random.default_rng(0)
    values = np.repeat(rng.integers(0, 3, 40), rng.integers(1, 5, 40))
    ids, lengths = run_lengths(values)
    np.testing.assert_array_equal(np.repeat(ids, lengths), values)
    assert (ids[1:] != ids[:-1]).all() and (lengths > 0).all(), "maximal runs"
    assert [a.tolist() for a in run_lengths(np.array([True, True, False]))] == [[True, False], [2, 1]]
    assert all(a.size == 0 for a in run_lengths(np.zeros(0, np.int32)))
    grid = np.zeros((3, 4), np.int32)  # one value everywhere: still one run per row
    np.testing.assert_array_equal(run_starts(grid).sum(1), [1, 1, 1])
    with pytest.raises(ValueError, match="1-D"):
        run_lengths(grid)
