"""Farthest point sampling with the semantics of dgl's ``farthest_point_sampler`` used by official CAST."""
from __future__ import annotations

import torch


@torch.no_grad()
def farthest_point_sample(points: torch.Tensor, num_samples: int, start: int = 0) -> torch.Tensor:
    """Pick ``num_samples`` indices per batch element by farthest point sampling.

    points: (B, M, C). Distances are squared Euclidean in float64. The first pick is ``start``; each
    next pick is the point farthest from all picks so far, ties going to the lowest index (argmax
    returns the first maximum). Vectorised over the batch; the loop runs over the picks only.
    Returns (B, num_samples) int64.
    """
    pts = points.double()
    batch, count, _ = pts.shape
    if num_samples > count:
        raise ValueError(f"cannot sample {num_samples} of {count} points")
    arange = torch.arange(batch, device=pts.device)
    picks = torch.empty(batch, num_samples, dtype=torch.long, device=pts.device)
    picks[:, 0] = start
    nearest = torch.full((batch, count), float("inf"), dtype=torch.float64, device=pts.device)
    last = pts[:, start]
    for i in range(1, num_samples):
        nearest = torch.minimum(nearest, (pts - last[:, None]).square().sum(-1))
        picks[:, i] = nearest.argmax(dim=1)
        last = pts[arange, picks[:, i]]
    return picks
