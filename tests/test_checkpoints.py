"""Checkpoint format, resolution, official conversion (DeiT layout built here), and failure modes."""
import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import REPO
from hierseg.checkpoints import (
    CheckpointConfig, convert_file, load_checkpoint, read_config, resolve_checkpoint, save_checkpoint,
)
from hierseg.cli import main as cli_main
from hierseg.errors import CheckpointError
from hierseg.model import build_cast
from hierseg.model.hybrid import LiteStemConfig, RegionMergingConfig
from hierseg.superpixels import SEEDS_MOCO


def small_checkpoint(tmp_path, name="tiny", **overrides):
    model = build_cast("cast_micro", img_size=64, num_classes=3, **overrides).eval()
    config = CheckpointConfig(model=model.config, superpixels=SEEDS_MOCO, class_names=["a", "b", "c"], name=name)
    return model, save_checkpoint(model, config, tmp_path / name)


def test_round_trip_is_exact(tmp_path):
    model, folder = small_checkpoint(tmp_path)
    loaded, config = load_checkpoint(folder)
    assert config.class_names == ["a", "b", "c"] and config.superpixels == SEEDS_MOCO
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    assert not list(folder.parent.glob(".tiny.*")), "temporary folders must not be left behind"


def test_nothing_shipped_is_a_pickle(tmp_path):
    _, folder = small_checkpoint(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert json.loads((folder / "config.json").read_text())["format"] == "hierseg-checkpoint"


def test_training_heads_are_dropped_when_shipping(tmp_path):
    model = build_cast("cast_micro", img_size=64, proj_dim=16, proj_hidden_dim=32, predictor=True)
    folder = save_checkpoint(model, CheckpointConfig(model=model.config, superpixels=SEEDS_MOCO), tmp_path / "m")
    loaded, config = load_checkpoint(folder)
    assert config.model.proj_dim == 0 and loaded.projector is None and loaded.predictor is None


def test_resolve_by_path_file_and_env(tmp_path, monkeypatch):
    _, folder = small_checkpoint(tmp_path)
    assert resolve_checkpoint(folder) == folder
    assert resolve_checkpoint(folder / "model.safetensors") == folder
    monkeypatch.setenv("HIERSEG_CHECKPOINTS", str(tmp_path))
    assert resolve_checkpoint("tiny") == tmp_path / "tiny"
    monkeypatch.setenv("HIERSEG_CHECKPOINT", "tiny")
    assert resolve_checkpoint(None) == tmp_path / "tiny"


def test_unknown_name_lists_what_exists(tmp_path, monkeypatch):
    small_checkpoint(tmp_path)
    monkeypatch.setenv("HIERSEG_CHECKPOINTS", str(tmp_path))
    with pytest.raises(CheckpointError, match="tiny"):
        resolve_checkpoint("no-such-model")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "missing"])
def test_corrupt_weights_give_a_clear_error(tmp_path, damage):
    _, folder = small_checkpoint(tmp_path)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    if damage == "truncate":
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        weights.write_bytes(b"not a safetensors file at all" * 10)
    elif damage == "empty":
        weights.write_bytes(b"")
    else:
        weights.unlink()
    with pytest.raises(CheckpointError):
        load_checkpoint(folder)


def test_corrupt_or_mismatched_config(tmp_path):
    _, folder = small_checkpoint(tmp_path)
    cfg = folder / "config.json"
    good = json.loads(cfg.read_text())
    cfg.write_text("{broken")
    with pytest.raises(CheckpointError, match="JSON"):
        read_config(folder)
    good["model"]["embed_dim"] = 96  # weights no longer fit the architecture
    cfg.write_text(json.dumps(good))
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(folder)
    good["model"]["embed_dim"] = 48
    good["class_names"] = ["only one"]
    cfg.write_text(json.dumps(good))
    with pytest.raises(CheckpointError, match="class names"):
        load_checkpoint(folder)


def test_offline_hub_fails_fast_with_a_clear_message(tmp_path, monkeypatch):
    import socket
    import time

    from huggingface_hub import constants

    from hierseg.checkpoints import hub_reachable

    monkeypatch.setenv("HIERSEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with socket.socket() as listening:  # an endpoint that answers, then one that cannot
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
        assert hub_reachable()
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")  # closed now: refused
    assert not hub_reachable()
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match="cannot be reached from this machine"):
        resolve_checkpoint("official/moco-in1k-cast_small")
    assert time.perf_counter() - start < 15, "offline must be reported, not retried for half a minute"
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CheckpointError, match="offline"):
        resolve_checkpoint("hf://twke/CAST/snapshots/deit/imagenet1k/cast_small/best_checkpoint.pth")


def official_deit_file(model, path):
    """Write ``model`` in the official DeiT layout: no prefix, cls row in pos_embed, blocks stored twice."""
    state, starts = {}, np.cumsum([0, *model.config.depths])
    for k, v in model.state_dict().items():
        if k in ("stem.pos_embed", "stem.cls_pos_embed"):
            continue
        if k.startswith("stages."):
            _, stage, local, rest = k.split(".", 3)
            index = starts[int(stage)] + int(local)
            state[f"blocks.{index}.{rest}"] = v.clone()
            state[f"blocks{int(stage) + 1}.{index}.{rest}"] = v.clone()
        elif k.startswith("pools."):
            _, level, part, rest = k.split(".", 3)
            part = {"affinity": "centroid_fc"}.get(part, part)
            state[f"pool{int(level) + 1}.pool_block.{part}.{rest}"] = v
        elif k.startswith("stem."):
            state["patch_embed." + k[len("stem."):]] = v
        else:
            state[k] = v
    state["pos_embed"] = torch.cat([model.stem.cls_pos_embed, model.stem.pos_embed], dim=1)
    ema = {k: v + 1 for k, v in state.items() if v.is_floating_point()}
    torch.save({"model": state, "model_ema": ema, "epoch": 299, "args": argparse.Namespace(model="cast_small")}, path)


def test_deit_layout_converts_exactly(tmp_path):
    torch.manual_seed(0)
    model = build_cast("cast_micro", pos_embed="learned", num_classes=7).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    official_deit_file(model, tmp_path / "best_checkpoint.pth")
    folder, report = convert_file(tmp_path / "best_checkpoint.pth", tmp_path / "deit", clusters=(16, 8, 4, 2))
    assert "deit checkpoint" in report
    loaded, config = load_checkpoint(folder)
    assert config.model.stem.pos_embed == "learned" and config.model.num_classes == 7
    assert config.superpixels.histogram_bins == 5  # the DeiT recipe's SEEDS setting
    image = torch.randn(2, 3, 224, 224)
    sp = torch.arange(196).view(14, 14).repeat_interleave(16, 0).repeat_interleave(16, 1).expand(2, -1, -1)
    with torch.no_grad():
        a, b = model(image, sp), loaded(image, sp)
    assert torch.equal(a.logits, b.logits)
    # The EMA weights are a different entry of the same file.
    folder_ema, _ = convert_file(tmp_path / "best_checkpoint.pth", tmp_path / "deit_ema", clusters=(16, 8, 4, 2), use_ema=True)
    assert torch.equal(load_checkpoint(folder_ema)[0].norm.weight, model.norm.weight + 1)


def test_official_files_are_never_unpickled_beyond_the_allow_list(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"model": {"x": torch.zeros(1)}, "evil": Evil()}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="cannot read"):
        convert_file(tmp_path / "bad.pth", tmp_path / "out")


def test_cli_convert_and_info(tmp_path, capsys):
    torch.manual_seed(1)
    model = build_cast("cast_micro", pos_embed="learned", num_classes=7)
    official_deit_file(model, tmp_path / "best.pth")
    assert cli_main(["convert", str(tmp_path / "best.pth"), str(tmp_path / "conv"), "--clusters", "16,8,4,2"]) == 0
    assert "mapped" in capsys.readouterr().out
    assert cli_main(["info", str(tmp_path / "conv")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_classes"] == 7 and info["model"]["clusters"] == [16, 8, 4, 2]
    assert cli_main(["info", str(tmp_path / "nothing")]) == 2


def _as_format_1(folder: Path, into: Path) -> dict:
    """A copy of a format-2 lite0 checkpoint in the layout format 1 wrote (the default shipped before
    2026-12-04): flat model settings, the Lite0 body under ``stem.``, the token embedding and a zero
    ``cls_pos_embed`` beside the stem. Returns the flat model config."""
    config = json.loads((folder / "config.json").read_text())
    nested = config["model"]
    stem, pooling = nested["stem"], nested["pooling"]
    flat = {k: v for k, v in nested.items() if k not in ("stem", "pooling")}
    flat.update(stem=stem["kind"], img_size=stem["img_size"], pos_embed="sincos", stem_taps=stem["taps"],
                pooling=pooling["kind"], pool_dropout=pooling["dropout"], merge_colour=pooling["merge_colour"],
                merge_taps=pooling["merge_taps"], merge_tokens=pooling["merge_tokens"],
                grouping_dim=pooling["grouping_dim"])
    into.mkdir()
    (into / "config.json").write_text(json.dumps({**config, "format_version": 1, "model": flat}))
    old = {}
    for key, value in load_file(str(folder / "model.safetensors")).items():
        if key.startswith("stem.body."):
            key = "stem." + key[len("stem.body."):]
        elif key.startswith("stem.token_embed."):
            key = key[len("stem."):]
        old[key] = value
    old["cls_pos_embed"] = torch.zeros(1, 1, nested["embed_dim"])
    save_file(old, str(into / "model.safetensors"))
    shutil.copy2(folder / "labeller.safetensors", into / "labeller.safetensors")
    return flat


def test_a_format_1_default_loads_through_the_upgrade(tmp_path):
    shipped = REPO / "checkpoints" / "default"
    flat = _as_format_1(shipped, tmp_path / "flat")
    model, config = load_checkpoint(tmp_path / "flat")  # strict: every weight found under its new name
    assert config.model.stem == LiteStemConfig(img_size=flat["img_size"], taps=tuple(flat["stem_taps"]))
    assert config.model.pooling == RegionMergingConfig(
        dropout=flat["pool_dropout"], merge_colour=flat["merge_colour"], merge_taps=tuple(flat["merge_taps"]),
        merge_tokens=flat["merge_tokens"], grouping_dim=flat["grouping_dim"])
    reference, reference_config = load_checkpoint(shipped)
    assert config == reference_config
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values(), strict=True))
    # Saving writes the current format, nested; it loads back to the same weights and config.
    saved = save_checkpoint(model, config, tmp_path / "again")
    nested = json.loads((saved / "config.json").read_text())
    assert nested["format_version"] == 2 and nested["model"]["pooling"]["merge_tokens"] == flat["merge_tokens"]
    again, config_again = load_checkpoint(saved)
    assert config_again == config
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True))


def test_a_format_1_official_checkpoint_loads(tmp_path):
    """Official conversions cached before format 2 kept the position tables beside the stem."""
    model, folder = small_checkpoint(tmp_path, pos_embed="learned")
    config = json.loads((folder / "config.json").read_text())
    model_config = config["model"]
    flat = {k: v for k, v in model_config.items() if k not in ("stem", "pooling")}
    flat.update(stem="conv", img_size=64, pos_embed="learned", stem_taps=[2, 4, 6], pooling="graph",
                pool_dropout=model_config["pooling"]["dropout"], merge_colour=1.0, merge_taps=[1.0, 1.0, 0.0],
                merge_tokens=0.0)
    (folder / "config.json").write_text(json.dumps({**config, "format_version": 1, "model": flat}))
    state = load_file(str(folder / "model.safetensors"))
    old = {k[len("stem."):] if k in ("stem.pos_embed", "stem.cls_pos_embed") else k: v for k, v in state.items()}
    save_file(old, str(folder / "model.safetensors"))
    loaded, loaded_config = load_checkpoint(folder)
    assert loaded_config.model == model.config
    assert torch.equal(loaded.stem.pos_embed, model.stem.pos_embed) and torch.equal(loaded.stem.proj[0].weight, model.stem.proj[0].weight)
