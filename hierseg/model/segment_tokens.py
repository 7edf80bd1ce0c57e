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
