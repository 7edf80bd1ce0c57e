"""Saving a model and its config as a checkpoint folder, and loading one back strictly."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError
from ..model import CAST
from .format import CONFIG, FORMAT, LABELLER_WEIGHTS, WEIGHTS, CheckpointConfig, upgrade_state

__all__ = ["load_checkpoint", "read_config", "save_checkpoint"]


def save_checkpoint(model: CAST, config: CheckpointConfig, folder: str | Path, drop_training_heads: bool = True) -> Path:
    """Write ``folder/model.safetensors`` and ``folder/config.json`` atomically (temp folder, then rename).

    With ``drop_training_heads`` the MoCo projector and predictor are left out: inference never uses them.
    """
    folder = Path(folder)
    model_config = model.config
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if drop_training_heads:
        state = {k: v for k, v in state.items() if not k.startswith(("projector.", "predictor."))}
        model_config = model_config.replace(proj_dim=0, predictor=False)
    config = CheckpointConfig(**{**config.__dict__, "model": model_config})
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        save_file(state, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        (tmp / CONFIG).write_text(json.dumps(config.to_dict(), indent=1) + "\n")
        if config.labeller and (folder / LABELLER_WEIGHTS).is_file():  # the labeller's head stays with the model
            shutil.copy2(folder / LABELLER_WEIGHTS, tmp / LABELLER_WEIGHTS)
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            folder.rename(old)
            tmp.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def read_config(folder: str | Path) -> CheckpointConfig:
    """The config of a checkpoint folder (any format version this hierseg reads)."""
    return CheckpointConfig.from_dict(_read_json(Path(folder) / CONFIG))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path} is missing") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from exc


def load_checkpoint(folder: str | Path, device: str | torch.device = "cpu") -> tuple[CAST, CheckpointConfig]:
    """Build the model a checkpoint folder describes and load its weights strictly."""
    folder = Path(folder)
    raw = _read_json(folder / CONFIG)
    config = CheckpointConfig.from_dict(raw)
    try:
        state = upgrade_state(load_file(str(folder / WEIGHTS), device=str(device)), raw.get("format_version", 0),
                              config.model)
    except FileNotFoundError as exc:
        raise CheckpointError(f"{folder / WEIGHTS} is missing") from exc
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{folder / WEIGHTS} is corrupt or truncated: {exc}") from exc
    model = CAST(config.model)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in set(state) & set(expected) if state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{folder}: weights do not match the config "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {sorted(wrong)[:3]})"
        )
    model.load_state_dict(state)
    return model.to(device).eval(), config
