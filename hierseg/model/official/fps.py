"""Farthest point sampling with the semantics of dgl's ``farthest_point_sampler`` used by official CAST."""
from __future__ import annotations

import torch


@torch.no_grad()
def farthest_point_sample(points: torch.Tensor, num_samples: int, start: int = 0) -> torch.Tensor:
    """Pick ``num_samples`` indices per batch element by farthest point sampling.

    points: (B, M, C). Distances are squared Euclidean in float64. The first pick is ``start``; each
    next pick is the point farthest from all picks so far, ties going to the lowest index (argmax
    returns the first maximum); no point is picked twice. Vectorised over the batch; the loop runs over the picks only.
    Returns (B, num_samples) int64.
    """
    pts = points.double()
    batch, count, _ = pts.shape
    if num_samples > count:
        raise ValueError(f"cannot sample {num_samples} of {count} points")
    # All pairwise squared distances in one float64 matrix product: far cheaper than K passes over
    # (B, M, C), and float64 keeps the rounding far below any gap that decides a pick.
    sq = pts.square().sum(-1)
    dist = (sq[:, :, None] + sq[:, None, :] - 2 * pts @ pts.transpose(1, 2)).clamp_min_(0)
    dist.diagonal(dim1=1, dim2=2).zero_()
    rows = dist.view(batch * count, count)  # row b * count + j: distances from point j of image b
    offsets = torch.arange(batch, device=pts.device) * count
    picks = torch.empty(batch, num_samples, dtype=torch.long, device=pts.device)
    picks[:, 0] = start
    nearest = dist[:, start].clone()
    # Picked points are marked -1 so that, once every remaining point coincides with a pick (more
    # samples than distinct points, e.g. a mostly padded image), the lowest unpicked index comes
    # next instead of a repeat. While any point is farther than 0 this changes nothing.
    nearest[:, start] = -1
    for i in range(1, num_samples):
        picks[:, i] = nearest.argmax(dim=1)
        torch.minimum(nearest, rows.index_select(0, offsets + picks[:, i]), out=nearest)
        nearest.scatter_(1, picks[:, i:i + 1], -1.0)
    return picks
