"""hierseg's checkpoints: a folder of ``model.safetensors`` (weights) and ``config.json`` (everything else).

Checkpoints load by name (a folder in one of ``checkpoint_roots()``), by path, or from the Hugging
Face Hub (official CAST releases are converted once and cached). One module per concept:

* ``format``: the config record (with its named qualities), the file names and the upgrade of older
  formats (1 -> 2);
* ``io``: saving a checkpoint folder and loading it back strictly;
* ``resolve``: names (``NAME@QUALITY`` too), search roots, ``$HIERSEG_CHECKPOINTS`` and the default checkpoint;
* ``hub``: the official releases, whether the Hub answers, and their download;
* ``cache``: the conversion of official files, kept in ``cache_dir()``.
"""
from .cache import cache_dir, convert_file, convert_to_cache
from .format import (
    CONFIG, FORMAT, FORMAT_VERSION, LABELLER_WEIGHTS, QUALITY_SEPARATOR, WEIGHTS, CheckpointConfig,
    upgrade_config, upgrade_state,
)
from .hub import OFFICIAL_RELEASES, fetch_official, hub_reachable, in_hub_cache, release_key
from .io import load_checkpoint, read_config, save_checkpoint
from .resolve import (
    DEFAULT_CHECKPOINT, SHIPPED_CHECKPOINTS, checkpoint_roots, default_checkpoint, local_names, resolve_checkpoint,
    resolve_reference, split_quality,
)

__all__ = [
    "CONFIG", "DEFAULT_CHECKPOINT", "FORMAT", "FORMAT_VERSION", "LABELLER_WEIGHTS", "OFFICIAL_RELEASES", "QUALITY_SEPARATOR",
    "SHIPPED_CHECKPOINTS", "WEIGHTS", "CheckpointConfig", "cache_dir", "checkpoint_roots", "convert_file",
    "convert_to_cache", "default_checkpoint", "fetch_official", "hub_reachable", "in_hub_cache", "load_checkpoint",
    "local_names", "read_config", "release_key", "resolve_checkpoint", "resolve_reference", "save_checkpoint", "split_quality", "upgrade_config",
    "upgrade_state",
]
