"""Which worker this process is: rank and world size from the launcher's environment, no process group.

torchrun sets ``RANK``/``WORLD_SIZE``; ``srun`` sets ``SLURM_PROCID``/``SLURM_NTASKS``; a SLURM array job
sets ``SLURM_ARRAY_TASK_ID`` and ``SLURM_ARRAY_TASK_COUNT``. Under ``srun torchrun`` on several nodes the
torchrun variables win (they count every process of every node). A plain run is rank 0 of 1.
"""
from __future__ import annotations

import os
from typing import Mapping, NamedTuple

__all__ = ["Rank", "rank_from_env"]


class Rank(NamedTuple):
    rank: int
    world: int
    source: str  # which variables said so


_SOURCES = (
    ("RANK", "WORLD_SIZE", "torchrun"),
    ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "slurm array"),
    ("SLURM_PROCID", "SLURM_NTASKS", "srun"),
)


def rank_from_env(env: Mapping[str, str] | None = None) -> Rank:
    """This process's rank and world size (see the module's docstring).

    Raises:
        ValueError: when the variables are not integers with 0 <= rank < world.
    """
    env = os.environ if env is None else env
    for rank_name, world_name, source in _SOURCES:
        if rank_name in env and world_name in env:
            try:
                rank, world = int(env[rank_name]), int(env[world_name])
            except ValueError:
                raise ValueError(f"{rank_name}={env[rank_name]!r}, {world_name}={env[world_name]!r} are not integers") from None
            if source == "slurm array":
                # Arrays may start at an offset (--array=1-8): count from SLURM_ARRAY_TASK_MIN.
                rank -= int(env.get("SLURM_ARRAY_TASK_MIN", 0))
            if not 0 <= rank < world:
                raise ValueError(f"{source}: rank {rank} is outside 0..{world - 1}")
            return Rank(rank, world, source)
    return Rank(0, 1, "single process")
