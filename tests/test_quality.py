"""Named qualities of a checkpoint (``CheckpointConfig.qualities``, ``load_segmenter("NAME@QUALITY")``): the same
weights with another view and cut heights, picked by name in the library, the CLI and the app's list."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from skimage import data

from hierseg import load_segmenter
from hierseg.checkpoints import CheckpointConfig, read_config, split_quality
from hierseg.errors import CheckpointError


def test_split_quality_reads_name_at_quality_and_leaves_paths_alone(tmp_path: Path) -> None:
    assert split_quality("default@fine") == ("default", "fine")
    assert split_quality("default") == ("default", None)
    assert split_quality("a@b@fast-2") == ("a@b", "fast-2")
    assert split_quality("x@") == ("x@", None) and split_quality("@fine") == ("@fine", None)
    folder = tmp_path / "model@v2"
    folder.mkdir()
    assert split_quality(str(folder)) == (str(folder), None)  # an existing path is never split


def test_a_quality_overrides_the_view_and_the_cut_and_nothing_else(shipped_checkpoint: str) -> None:
    config = read_config(Path("checkpoints") / shipped_checkpoint)
    assert "fine" in config.qualities, "the shipped default offers a fine quality"
    fine = config.with_quality("fine")
    overrides = config.qualities["fine"]
    assert fine.name == f"{config.name}@fine" and fine.qualities == {}
    assert fine.input.size == overrides["input"]["size"] > config.input.size
    assert list(fine.tree.thresholds) == overrides["tree"]["thresholds"] != list(config.tree.thresholds)
    assert (fine.tree.size_power, fine.tree.border_sigma, fine.superpixels, fine.model) == (
        config.tree.size_power, config.tree.border_sigma, config.superpixels, config.model)
    assert config.with_quality(None) is config and config.with_quality("") is config
    assert CheckpointConfig.from_dict(config.to_dict()).qualities == config.qualities  # kept on a round trip


def test_a_bad_quality_is_refused_when_the_config_loads(shipped_checkpoint: str) -> None:
    raw = json.loads((Path("checkpoints") / shipped_checkpoint / "config.json").read_text())
    with pytest.raises(CheckpointError, match="no quality 'coarse'"):
        CheckpointConfig.from_dict(raw).with_quality("coarse")
    for bad, message in (({"input": {"size": 3}}, "input size"), ({"model": {"embed_dim": 8}}, "overriding only"),
                         ({"tree": {"thresholds": [0.1, 0.2]}}, "decreasing")):
        with pytest.raises(CheckpointError, match=message):
            CheckpointConfig.from_dict({**raw, "qualities": {"fine": bad}})
    without_tree = {key: value for key, value in raw.items() if key != "tree"}
    with pytest.raises(CheckpointError, match="without one"):
        CheckpointConfig.from_dict({**without_tree, "qualities": {"fine": {"tree": {"thresholds": [0.1]}}}})


def test_load_segmenter_at_a_quality_views_larger_and_cuts_at_its_heights(shipped_checkpoint: str) -> None:
    standard = load_segmenter(shipped_checkpoint, device="cpu")
    fine = load_segmenter(f"{shipped_checkpoint}@fine", device="cpu")
    assert load_segmenter(shipped_checkpoint, device="cpu", quality="fine").config == fine.config
    photo = data.astronaut()
    small, large = standard.prepare(photo), fine.prepare(photo)
    assert max(large.view.rgb.shape[:2]) == fine.config.input.size > max(small.view.rgb.shape[:2])
    h = fine(photo)
    assert h.meta["checkpoint"] == f"{standard.config.name}@fine"
    assert np.allclose(h.cut_heights[: len(fine.config.tree.thresholds)], fine.config.tree.thresholds)
    assert h.label_maps[0].shape == photo.shape[:2]
    with pytest.raises(CheckpointError, match="no quality"):
        load_segmenter(f"{shipped_checkpoint}@nonsense", device="cpu")


def test_the_app_lists_each_quality_after_its_checkpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          shipped_checkpoint: str) -> None:
    from explorer import checkpoint_menu

    shutil.copytree(Path("checkpoints") / shipped_checkpoint, tmp_path / "mine",
                    ignore=shutil.ignore_patterns("*.safetensors", "README.md"))
    monkeypatch.setenv("HIERSEG_CHECKPOINTS", str(tmp_path))
    monkeypatch.delenv("HIERSEG_CHECKPOINT", raising=False)
    names = checkpoint_menu.available_checkpoints()
    assert names.index("mine@fine") == names.index("mine") + 1
    assert checkpoint_menu.checkpoint_label("mine@fine") == "mine · fine"
