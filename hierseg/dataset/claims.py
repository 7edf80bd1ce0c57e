"""Who is working on a shard: a claim file created with O_EXCL, so exactly one process wins it.

A rank first walks its own shards (``shard % world == rank``), then the others', claiming each before work;
a rank that finishes early so takes a straggler's leftover shards, with no coordinator and no process group.
A claim records the host, the pid and the process's start time; the holder touches it as it works. A claim is
stale, and may be taken over, when its process is gone (same host: the pid is dead or was reused) or it has
not been touched for ``stale_after`` seconds (another host). That is how a run killed mid-shard resumes.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

__all__ = ["Claim", "try_claim"]


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), None when no such process."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _me() -> dict[str, object]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": _process_start(os.getpid())}


class Claim:
    """A held claim on one shard; ``touch`` while working, ``release`` when the shard is done."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def touch(self) -> None:
        try:
            os.utime(self.path)
        except FileNotFoundError:
            pass

    def release(self) -> None:
        self.path.unlink(missing_ok=True)


def try_claim(path: Path, stale_after: float) -> Claim | None:
    """Claim ``path`` (a new file), taking over a stale claim; None when a live process holds it."""
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            seen = _read(path)
            if not _is_stale(path, seen, stale_after):
                return None
            # Move the stale claim aside under a name of our own, then check it was the one judged stale:
            # a rank that took it over a moment earlier holds a fresh claim there, which goes back.
            aside = path.with_name(f"{path.name}.stale.{os.getpid()}")
            try:
                os.rename(path, aside)
            except FileNotFoundError:
                continue
            if _read(aside) != seen:
                try:
                    os.link(aside, path)
                except FileExistsError:
                    pass
                aside.unlink()
                return None
            aside.unlink()
            continue
        with os.fdopen(fd, "w") as file:
            json.dump(_me(), file)
        return Claim(path)
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _is_stale(path: Path, text: str | None, stale_after: float) -> bool:
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    try:
        holder = json.loads(text or "")
    except ValueError:  # a claim being written right now, or cut short by a kill
        return age > 5
    if holder.get("host") == socket.gethostname():
        return _process_start(int(holder["pid"])) != holder.get("start")
    return age > stale_after
