"""hierseg's checkpoint format: ``model.safetensors`` (weights) + ``config.json`` (everything else).

A checkpoint is a folder. ``config.json`` holds the architecture, the superpixel method and its
parameters, the input size and normalisation, the class names, provenance and metrics; nothing we
ship is a pickle. Checkpoints load by name (a folder in one of ``checkpoint_roots()``), by path, or
from the Hugging Face Hub (official CAST releases are converted once and cached).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import CheckpointError
from .hierarchy.merge_tree import TreeConfig
from .model import CAST, CASTConfig
from .preprocess import InputConfig
from .superpixels import SuperpixelConfig

FORMAT = "hierseg-checkpoint"
# 2: the model config nests its stem and pooling (``CASTConfig``), and the stems own their weights.
# Format 1 (flat model config) still loads: ``upgrade_config`` and ``upgrade_state`` translate it.
FORMAT_VERSION = 2
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
LABELLER_WEIGHTS = "labeller.safetensors"  # hierseg.labeller's head, beside the model's weights
DEFAULT_CHECKPOINT = "default"
# The checkpoints that ship with hierseg: in a regular install they are package data
# (pyproject.toml maps the repository's checkpoints/ to this package folder); in a source checkout
# or an editable install they are read from checkpoints/ in place.
_INSTALLED_CHECKPOINTS = Path(__file__).resolve().parent / "shipped_checkpoints"
SHIPPED_CHECKPOINTS = (
    _INSTALLED_CHECKPOINTS if _INSTALLED_CHECKPOINTS.is_dir() else Path(__file__).resolve().parent.parent / "checkpoints"
)


def default_checkpoint() -> str:
    """The checkpoint loaded when none is named: ``$HIERSEG_CHECKPOINT`` when set (and not empty), else
    the shipped ``default``."""
    return os.environ.get("HIERSEG_CHECKPOINT") or DEFAULT_CHECKPOINT


def checkpoint_roots() -> list[Path]:
    """Folders searched for a checkpoint by name, first match first: the folders of
    ``$HIERSEG_CHECKPOINTS`` (``os.pathsep``-separated), then the shipped checkpoints."""
    extra = os.environ.get("HIERSEG_CHECKPOINTS", "")
    return [*(Path(p).expanduser() for p in extra.split(os.pathsep) if p), SHIPPED_CHECKPOINTS]


@dataclass
class CheckpointConfig:
    """Everything but the weights."""

    model: CASTConfig
    superpixels: SuperpixelConfig
    class_names: list[str] = field(default_factory=list)
    input: InputConfig | None = None  # None: the official recipe, the whole image squashed to img_size
    name: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    # How nodes and the photo get class evidence (``hierseg.labeller.LabellerConfig``; {}: chosen by the model).
    labeller: dict[str, Any] = field(default_factory=dict)
    # None: the hierarchy is the poolings' levels; else a merge tree per photo cut to display levels
    # (``hierseg.hierarchy.merge_tree``), which needs region merging.
    tree: TreeConfig | None = None

    def __post_init__(self) -> None:
        if self.input is None:
            self.input = InputConfig(size=self.model.stem.img_size)
        side = self.model.stem.square_input
        if side is not None and (self.input.resize != "square" or self.input.size != side):
            raise CheckpointError(f"the {self.model.stem.kind} stem needs a square {side} px input, not {self.input}")
        if self.model.num_classes and len(self.class_names) != self.model.num_classes:
            raise CheckpointError(
                f"{len(self.class_names)} class names for a {self.model.num_classes}-way classifier"
            )
        if self.tree is not None and not self.model.pooling.gives_tree:
            raise CheckpointError(f"a merge tree needs region merging (pooling 'merge'), not {self.model.pooling.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "model": self.model.to_dict(),
            "superpixels": self.superpixels.to_dict(),
            "input": self.input.to_dict(),
            "class_names": list(self.class_names),
            "provenance": self.provenance,
            "metrics": self.metrics,
            "labeller": self.labeller,
            **({"tree": self.tree.to_dict()} if self.tree is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CheckpointConfig":
        """Read a config of this format version or an older one (``upgrade_config``)."""
        d = upgrade_config(d)
        try:
            return cls(
                model=CASTConfig.from_dict(d["model"]),
                superpixels=SuperpixelConfig.from_dict(d["superpixels"]),
                class_names=list(d.get("class_names", [])),
                input=InputConfig.from_dict(d["input"]),
                name=d.get("name", ""),
                provenance=d.get("provenance", {}),
                metrics=d.get("metrics", {}),
                labeller=d.get("labeller", {}),
                tree=TreeConfig.from_dict(d["tree"]) if d.get("tree") is not None else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"invalid checkpoint config: {exc}") from exc


def upgrade_config(d: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint config of any format version this hierseg reads, as the current version.

    Raises:
        CheckpointError: if ``d`` is not a hierseg checkpoint config, or is newer than this hierseg.
    """
    if d.get("format") != FORMAT:
        raise CheckpointError(f"not a hierseg checkpoint config (format={d.get('format')!r})")
    version = d.get("format_version", 0)
    if version > FORMAT_VERSION:
        raise CheckpointError(f"checkpoint format {version} is newer than this hierseg ({FORMAT_VERSION})")
    if version < 2 and isinstance(d.get("model"), dict):
        try:
            model = CASTConfig.from_flat(d["model"]).to_dict()
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"invalid checkpoint config: {exc}") from exc
        d = {**d, "format_version": FORMAT_VERSION, "model": model}
    return d


def upgrade_state(state: dict[str, torch.Tensor], version: int, config: CASTConfig) -> dict[str, torch.Tensor]:
    """Weights saved by checkpoint format ``version`` under the current names.

    Format 1 kept the stems' tensors beside the model's: ``pos_embed``, ``cls_pos_embed`` and
    ``token_embed.*`` now live under ``stem.``, the Lite0 body under ``stem.body.``, and the lite0
    stem's ``cls_pos_embed`` (always zero: that stem gives the cls token no position) is dropped.
    """
    if version >= 2:
        return state
    renamed = {}
    for key, value in state.items():
        key = config.stem.format1_key(key)  # the stem's own renames first (StemConfig.format1_key)
        if key is None:
            continue
        if key in ("pos_embed", "cls_pos_embed") or key.startswith("token_embed."):
            key = "stem." + key
        renamed[key] = value
    return renamed


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


# Official releases on the Hugging Face Hub (twke/CAST's snapshots/): name -> (repo, file in it).
OFFICIAL_RELEASES: dict[str, tuple[str, str]] = {
    f"official/moco-in1k-{arch}": ("twke/CAST", f"snapshots/moco/imagenet1k/{arch}/checkpoint_0099.pth.tar")
    for arch in ("cast_small", "cast_small_deep", "cast_base", "cast_base_deep")
}
OFFICIAL_RELEASES.update({
    f"official/deit-in1k-{arch}": ("twke/CAST", f"snapshots/deit/imagenet1k/{arch}/best_checkpoint.pth")
    for arch in ("cast_small", "cast_small_deep")
})
OFFICIAL_RELEASES["official/moco-coco-cast_small"] = ("twke/CAST", "snapshots/moco/coco/cast_small/checkpoint_0399.pth.tar")


def available_checkpoints() -> list[str]:
    """Every checkpoint name to offer: ``$HIERSEG_CHECKPOINT``, the folders holding a ``config.json``
    in ``checkpoint_roots()``, then the official releases; no duplicates."""
    names = []
    if os.environ.get("HIERSEG_CHECKPOINT"):
        names.append(os.environ["HIERSEG_CHECKPOINT"])
    names.extend(_local_names(checkpoint_roots()))
    names.extend(OFFICIAL_RELEASES)
    return list(dict.fromkeys(names))  # first occurrence kept


def _local_names(roots: list[Path]) -> list[str]:
    """Names of the checkpoint folders (those holding a ``config.json``) in ``roots``, root by root."""
    return [p.name for root in roots if root.is_dir() for p in sorted(root.iterdir()) if (p / CONFIG).is_file()]


def checkpoint_label(name: str) -> str:
    """How a checkpoint is named in a list: a folder by its last component, anything else as is."""
    path = Path(name)
    return path.name if path.is_dir() else name


def cache_dir() -> Path:
    return Path(os.environ.get("HIERSEG_CACHE", Path.home() / ".cache" / "hierseg"))


def resolve_checkpoint(name_or_path: str | os.PathLike | None = None) -> Path:
    """Find a checkpoint folder: a path, a name in ``checkpoint_roots()``, or an official Hub release."""
    name = str(name_or_path) if name_or_path is not None else default_checkpoint()
    path = Path(name).expanduser()
    if path.is_file() and path.name in (WEIGHTS, CONFIG):
        path = path.parent
    if (path / CONFIG).is_file():
        return path
    if path.suffix in (".pth", ".tar") and path.is_file():
        return convert_to_cache(path, key=path.stem)
    search = checkpoint_roots()
    for root in search:
        if (root / name / CONFIG).is_file():
            return root / name
    if name in OFFICIAL_RELEASES or name.startswith("hf://"):
        return fetch_official(name)
    known = sorted(set(_local_names(search)))
    raise CheckpointError(
        f"no checkpoint named {name!r}: not a folder with {CONFIG}, not in {', '.join(map(str, search))} "
        f"(available: {', '.join(known) or 'none'}), and not an official release ({', '.join(OFFICIAL_RELEASES)})"
    )


def fetch_official(name: str) -> Path:
    """Download an official release (or ``hf://repo/path/in/repo``), convert it once, return the cached folder."""
    if name.startswith("hf://"):
        repo_path = name[len("hf://"):].split("/")
        if len(repo_path) < 3:
            raise CheckpointError(f"{name}: expected hf://owner/repo/path/to/file")
        repo, filename = "/".join(repo_path[:2]), "/".join(repo_path[2:])
    else:
        repo, filename = OFFICIAL_RELEASES[name]
    key = _release_key(repo, filename)
    converted = cache_dir() / key
    if (converted / CONFIG).is_file():
        return converted
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    # huggingface_hub retries a dead network for about half a minute; say "offline" in seconds instead.
    if not hub_reachable() and not _in_hub_cache(repo, filename):
        raise CheckpointError(
            f"{name} is on the Hugging Face Hub ({repo}/{filename}), which cannot be reached from this machine "
            "(offline). Download it once while online, or pass a local checkpoint."
        )
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "20")  # fail rather than hang on a slow network
    try:
        local = hf_hub_download(repo, filename, etag_timeout=10)
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise CheckpointError(
            f"cannot download {repo}/{filename} from the Hugging Face Hub (offline?): {type(exc).__name__}. "
            "Download it elsewhere and pass its path, or use a local checkpoint."
        ) from exc
    return convert_to_cache(Path(local), key=key, source=f"https://huggingface.co/{repo}/blob/main/{filename}")


def _release_key(repo: str, filename: str) -> str:
    """The cache folder name of a converted Hub file."""
    return (repo + "/" + filename).replace("/", "--")


def release_is_local(name: str) -> bool:
    """Whether an official release is on this machine already (converted, or in the Hub's download cache)."""
    repo, filename = OFFICIAL_RELEASES[name]
    return (cache_dir() / _release_key(repo, filename) / CONFIG).is_file() or _in_hub_cache(repo, filename)


def release_download_size(name: str, timeout: float = 3.0) -> int | None:
    """Bytes to download for an official release, as the Hub states them within ``timeout`` seconds (None: no answer)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    repo, filename = OFFICIAL_RELEASES[name]
    try:
        return get_hf_file_metadata(hf_hub_url(repo, filename), timeout=timeout).size
    except Exception:  # noqa: BLE001  (any failure only means the size is not known)
        return None


def offered_checkpoints(names: list[str], timeout: float = 3.0) -> dict[str, str]:
    """The checkpoints a list should offer, name -> label, in the order of ``names``.

    Local checkpoints and official releases already on this machine (``release_is_local``) are
    named as they are. A release that needs a download is labelled with its size when the Hub
    answers within ``timeout`` seconds (one bounded check, then the sizes asked in parallel), and
    left out when it does not: offline it could only fail.
    """
    remote = [name for name in names if name in OFFICIAL_RELEASES and not release_is_local(name)]
    sizes: dict[str, int | None] = {}
    if remote and hub_reachable(timeout):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(remote)) as pool:
            sizes = dict(zip(remote, pool.map(lambda name: release_download_size(name, timeout), remote)))
    offered = {}
    for name in names:
        if name not in remote:
            offered[name] = checkpoint_label(name)
        elif name in sizes:
            size = sizes[name]
            offered[name] = f"{name} (download, {size / 1e6:.0f} MB)" if size else f"{name} (download)"
    return offered


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub's endpoint (``HF_ENDPOINT``) accepts a TCP connection within ``timeout`` seconds
    (False when HF_HUB_OFFLINE is set)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    endpoint = urlparse(constants.ENDPOINT)
    address = (endpoint.hostname or "huggingface.co", endpoint.port or (80 if endpoint.scheme == "http" else 443))
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:
        return False


def _in_hub_cache(repo: str, filename: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo, filename), str)


def convert_to_cache(path: Path, key: str, source: str | None = None) -> Path:
    folder = cache_dir() / key
    if not (folder / CONFIG).is_file():
        convert_file(path, folder, source=source)
    return folder


def convert_file(src: str | Path, dst: str | Path, num_heads: int = 12, clusters: tuple[int, ...] = (64, 32, 16, 8),
                 use_ema: bool = False, source: str | None = None) -> tuple[Path, str]:
    """Convert an official ``.pth``/``.pth.tar`` to a hierseg checkpoint folder. Returns (folder, report)."""
    from .class_names import imagenet_class_names
    from .convert import convert_official, official_metadata

    model, report = convert_official(src, num_heads=num_heads, clusters=clusters, use_ema=use_ema)
    meta = official_metadata(report.family)
    names = imagenet_class_names() if model.config.num_classes == 1000 else [f"class {i}" for i in range(model.config.num_classes)]
    config = CheckpointConfig(
        model=model.config,
        superpixels=SuperpixelConfig.from_dict(meta["superpixels"]),
        class_names=names,
        input=InputConfig(size=model.config.stem.img_size, mean=tuple(meta["mean"]), std=tuple(meta["std"])),
        name=Path(dst).name,
        provenance={
            "converted_from": source or str(src),
            "family": report.family,
            "ema": use_ema,
            "tensors_mapped": len(report.mapped),
            "tensors_dropped": len(report.dropped),
            "not_in_file": report.missing,
        },
    )
    return save_checkpoint(model, config, dst), report.summary()
