"""From a dense feature grid and a superpixel map to one token per superpixel."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def superpixels_on_grid(superpixels: torch.Tensor, grid_size: int) -> torch.Tensor:
    """Nearest-downsample label maps (B, H, W) to the feature grid (B, g, g), as the official code does.

    PyTorch's ``nearest`` takes the label of the top-left pixel of each cell; superpixels that own no
    such pixel vanish from the grid (their tokens become padding).
    """
    grid = F.interpolate(superpixels[:, None].float(), size=(grid_size, grid_size), mode="nearest")
    return grid[:, 0].long()


def segment_mean(values: torch.Tensor, labels: torch.Tensor, num_segments: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Average ``values`` within each label.

    values: (B, P, C) per-cell features, or (1, P, C) broadcast over the batch (a position table).
    labels: (B, P) int64 in [0, num_segments).
    Returns means (B, num_segments, C), all-zero for labels absent from an image, and the cell
    counts (B, num_segments).
    """
    batch = labels.shape[0]
    values = values.expand(batch, -1, -1)
    sums = values.new_zeros(batch, num_segments, values.shape[-1])
    sums.scatter_add_(1, labels[..., None].expand(-1, -1, values.shape[-1]), values)
    counts = torch.zeros(batch, num_segments, dtype=values.dtype, device=values.device)
    counts.scatter_add_(1, labels, torch.ones_like(labels, dtype=values.dtype))
    return sums / counts.clamp(min=1)[..., None], counts


def region_cells(superpixels: torch.Tensor, grid: tuple[int, int], stride: int) -> torch.Tensor:
    """How many pixels of each superpixel fall in each cell of a stride-``stride`` feature grid.

    superpixels: (B, H, W) int64 ids at the image's resolution, -1 for padding. grid: (h, w) of the
    feature map. Returns (B, S, h*w) float counts, S = 1 + the largest id in the batch. Unlike the
    official nearest downsampling, every superpixel keeps a token however small it is.
    """
    batch, height, width = superpixels.shape
    rows = (torch.arange(height, device=superpixels.device) // stride).clamp(max=grid[0] - 1)
    cols = (torch.arange(width, device=superpixels.device) // stride).clamp(max=grid[1] - 1)
    cell = (rows[:, None] * grid[1] + cols[None, :]).reshape(1, -1).expand(batch, -1)
    labels = superpixels.reshape(batch, -1)
    count = int(labels.max()) + 1
    cells = grid[0] * grid[1]
    valid = labels >= 0
    flat = torch.where(valid, labels * cells + cell, 0)
    counts = torch.zeros(batch, count * cells, device=superpixels.device)
    counts.scatter_add_(1, flat, valid.float())
    return counts.view(batch, count, cells)


def region_adjacency(superpixels: torch.Tensor, count: int) -> torch.Tensor:
    """(B, S, S) bool: superpixels that touch (4-neighbourhood); padding (-1) touches nothing."""
    batch = superpixels.shape[0]
    pairs = []
    for a, b in ((superpixels[:, :, :-1], superpixels[:, :, 1:]), (superpixels[:, :-1], superpixels[:, 1:])):
        a, b = a.reshape(batch, -1), b.reshape(batch, -1)
        keep = (a != b) & (a >= 0) & (b >= 0)
        pairs.append(torch.where(keep, a * count + b, 0))
        pairs.append(torch.where(keep, b * count + a, 0))
    flat = torch.cat(pairs, dim=1)
    touching = torch.zeros(batch, count * count, dtype=torch.bool, device=superpixels.device)
    touching.scatter_(1, flat, True)
    touching = touching.view(batch, count, count)
    # Slot 0 (the pair 0-0) collects the non-pairs; a superpixel never neighbours itself.
    return touching & ~torch.eye(count, dtype=torch.bool, device=superpixels.device)
