"""Official CAST releases on the Hugging Face Hub: their names, whether the Hub answers, and the download.

A release is fetched once (``huggingface_hub``'s own cache) and converted once (``cache.convert_to_cache``);
offline, asking for one fails within seconds with a message that says so.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import CheckpointError
from .cache import cache_dir, convert_to_cache
from .format import CONFIG

__all__ = ["OFFICIAL_RELEASES", "fetch_official", "hub_reachable", "in_hub_cache", "release_key"]

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


def fetch_official(name: str) -> Path:
    """Download an official release (or ``hf://repo/path/in/repo``), convert it once, return the cached folder."""
    if name.startswith("hf://"):
        repo_path = name[len("hf://"):].split("/")
        if len(repo_path) < 3:
            raise CheckpointError(f"{name}: expected hf://owner/repo/path/to/file")
        repo, filename = "/".join(repo_path[:2]), "/".join(repo_path[2:])
    else:
        repo, filename = OFFICIAL_RELEASES[name]
    key = release_key(repo, filename)
    converted = cache_dir() / key
    if (converted / CONFIG).is_file():
        return converted
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    # huggingface_hub retries a dead network for about half a minute; say "offline" in seconds instead.
    if not hub_reachable() and not in_hub_cache(repo, filename):
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


def release_key(repo: str, filename: str) -> str:
    """The cache folder name of a converted Hub file."""
    return (repo + "/" + filename).replace("/", "--")


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


def in_hub_cache(repo: str, filename: str) -> bool:
    """Whether ``huggingface_hub`` holds this file of ``repo`` in its download cache already."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo, filename), str)
