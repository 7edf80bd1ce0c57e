"""The processes of a run (one, or N under ``torchrun``) and the random state each one carries.

``Processes.start`` reads torchrun's environment, picks the device and joins the process group;
the rest of this module is what DDP training needs beyond ``DistributedDataParallel``: a mean over
processes, BatchNorm over the global batch on CPUs, a gather without gradient for MoCo's keys, and
the RNG states that ``last.pt`` saves so a resumed run draws exactly what an uninterrupted one would.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

T = TypeVar("T")


@dataclass(frozen=True)
class Processes:
    """This process's place in the run: ``world`` processes, this one is ``rank`` on ``device``."""

    world: int
    rank: int
    local_rank: int
    device: torch.device

    @classmethod
    def start(cls, device: str = "auto", threads: int = 0) -> "Processes":
        """Read torchrun's variables (one process without them), pick the device, join the group.

        ``device``: auto (cuda when available) | cpu | cuda; ``threads``: torch CPU threads, 0 = default.
        """
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        chosen = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(chosen)
        if world > 1:
            dist.init_process_group("nccl" if use_cuda else "gloo")
        if threads:
            torch.set_num_threads(threads)
        return cls(world, rank, local_rank, chosen)

    @property
    def main(self) -> bool:
        """The process that writes files and logs."""
        return self.rank == 0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def seed(self, seed: int) -> None:
        """Seed the global RNGs per rank: dropout and drop path differ per process, like separate GPUs.

        Data randomness never draws from them (``training.data`` seeds per sample).
        """
        torch.manual_seed(seed + self.rank)
        np.random.seed(seed + self.rank)
        random.seed(seed + self.rank)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def main_first(self, make: Callable[[], T]) -> T:
        """``make()`` on the main process, then everywhere: for results the first call writes to disk."""
        if self.main:
            make()
        self.barrier()
        return make()

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean over processes of a tensor every process holds (one all-reduce)."""
        if self.world > 1:
            dist.all_reduce(values)
            values /= self.world
        return values

    def global_batchnorm(self, module: nn.Module) -> nn.Module:
        """Under DDP, BatchNorm statistics over the global batch (torch's SyncBatchNorm on GPUs)."""
        if self.world == 1:
            return module
        return nn.SyncBatchNorm.convert_sync_batchnorm(module) if self.cuda else to_global_batchnorm(module)

    def wrap(self, module: nn.Module, find_unused_parameters: bool) -> nn.Module:
        """``module`` under DistributedDataParallel when there are several processes, else itself."""
        if self.world == 1:
            return module
        return DistributedDataParallel(module, device_ids=[self.local_rank] if self.cuda else None,
                                       find_unused_parameters=find_unused_parameters)

    def rng_states(self) -> list[dict[str, Any]]:
        """Every process's RNG state, in rank order (a collective call: every process must make it)."""
        if self.world == 1:
            return [rng_state()]
        states: list[Any] = [None] * self.world
        dist.all_gather_object(states, rng_state())
        return states

    def close(self) -> None:
        if self.world > 1:
            dist.destroy_process_group()


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


@torch.no_grad()
def gather_from_all(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` over all processes along dim 0 (no gradient; identity without a process group)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def process_rank() -> int:
    """This process's rank in the group (0 without one)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes whose gradient is again the sum over processes (each rank holds one loss term)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the batch of all processes, for CPU/gloo runs (torch's SyncBatchNorm needs a GPU).

    Same parameters and buffers as BatchNorm, so state dicts do not change. The reductions are
    differentiable all-reduces, so gradients are those of BatchNorm on the concatenated batch.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.tensor(float(x.numel() // x.shape[1]))
        dist.all_reduce(count)
        mean = _AllReduceSum.apply(x.sum(dims)) / count
        centred = x - mean.view(shape)
        var = _AllReduceSum.apply(centred.square().sum(dims)) / count
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            self.running_mean.lerp_(mean.detach(), self.momentum)
            self.running_var.lerp_(var.detach() * count / (count - 1), self.momentum)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        return out * self.weight.view(shape) + self.bias.view(shape) if self.affine else out


def to_global_batchnorm(module: nn.Module) -> nn.Module:
    """Swap every BatchNorm for GlobalBatchNorm in place, keeping its tensors."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, GlobalBatchNorm):
            child.__class__ = GlobalBatchNorm
        else:
            to_global_batchnorm(child)
    return module
