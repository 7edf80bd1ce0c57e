"""Finding a checkpoint folder from what a person names: a path, a name in the search roots, or a release.

Names are looked up in ``checkpoint_roots()``: the folders of ``$HIERSEG_CHECKPOINTS``, then the
checkpoints that ship with hierseg. ``$HIERSEG_CHECKPOINT`` picks the one loaded when none is named.
A reference may end in ``@QUALITY``, one of the checkpoint's named qualities (``resolve_reference``).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import CheckpointError
from .cache import convert_to_cache
from .format import CONFIG, QUALITY_NAME, QUALITY_SEPARATOR, WEIGHTS
from .hub import OFFICIAL_RELEASES, fetch_official

__all__ = ["DEFAULT_CHECKPOINT", "SHIPPED_CHECKPOINTS", "checkpoint_roots", "default_checkpoint", "local_names",
           "resolve_checkpoint", "resolve_reference", "split_quality"]

DEFAULT_CHECKPOINT = "default"
# The checkpoints that ship with hierseg: in a regular install they are package data
# (pyproject.toml maps the repository's checkpoints/ to the package folder hierseg/shipped_checkpoints);
# in a source checkout or an editable install they are read from checkpoints/ in place.
_HIERSEG = Path(__file__).resolve().parent.parent
_INSTALLED_CHECKPOINTS = _HIERSEG / "shipped_checkpoints"
SHIPPED_CHECKPOINTS = _INSTALLED_CHECKPOINTS if _INSTALLED_CHECKPOINTS.is_dir() else _HIERSEG.parent / "checkpoints"


def default_checkpoint() -> str:
    """The checkpoint loaded when none is named: ``$HIERSEG_CHECKPOINT`` when set (and not empty), else
    the shipped ``default``."""
    return os.environ.get("HIERSEG_CHECKPOINT") or DEFAULT_CHECKPOINT


def checkpoint_roots() -> list[Path]:
    """Folders searched for a checkpoint by name, first match first: the folders of
    ``$HIERSEG_CHECKPOINTS`` (``os.pathsep``-separated), then the shipped checkpoints."""
    extra = os.environ.get("HIERSEG_CHECKPOINTS", "")
    return [*(Path(p).expanduser() for p in extra.split(os.pathsep) if p), SHIPPED_CHECKPOINTS]


def local_names(roots: list[Path]) -> list[str]:
    """Names of the checkpoint folders (those holding a ``config.json``) in ``roots``, root by root."""
    return [p.name for root in roots if root.is_dir() for p in sorted(root.iterdir()) if (p / CONFIG).is_file()]


def split_quality(reference: str) -> tuple[str, str | None]:
    """``"NAME@QUALITY"`` -> ``("NAME", "QUALITY")``; a reference without a quality (or an existing path
    that happens to hold ``@``) -> ``(reference, None)``."""
    base, sep, quality = reference.rpartition(QUALITY_SEPARATOR)
    if not sep or not base or not re.fullmatch(QUALITY_NAME, quality) or Path(reference).expanduser().exists():
        return reference, None
    return base, quality


def resolve_reference(reference: str | os.PathLike | None = None) -> tuple[Path, str | None]:
    """The checkpoint folder a reference names and the quality it asks for (None: the checkpoint as saved):
    ``resolve_checkpoint`` of ``NAME`` for ``NAME@QUALITY``; None is the default checkpoint, which
    ``$HIERSEG_CHECKPOINT`` may also name with a quality."""
    name, quality = split_quality(str(reference) if reference is not None else default_checkpoint())
    return resolve_checkpoint(name), quality


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
    known = sorted(set(local_names(search)))
    raise CheckpointError(
        f"no checkpoint named {name!r}: not a folder with {CONFIG}, not in {', '.join(map(str, search))} "
        f"(available: {', '.join(known) or 'none'}), and not an official release ({', '.join(OFFICIAL_RELEASES)})"
    )
