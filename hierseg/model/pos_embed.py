"""Position tables for the feature grid."""
from __future__ import annotations

import torch


def sincos_2d(grid_size: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sin-cos table of the MoCo-v3 family: (1, grid_size**2, dim), row-major.

    Cell k sits at row r = k // grid_size and column q = k % grid_size; its vector is
    [sin(r w), cos(r w), sin(q w), cos(q w)] with w_d = 10000 ** (-d / (dim / 4)).
    """
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    rows, cols = torch.meshgrid(
        torch.arange(grid_size, dtype=torch.float64), torch.arange(grid_size, dtype=torch.float64), indexing="ij"
    )
    r = rows.reshape(-1, 1) * omega
    q = cols.reshape(-1, 1) * omega
    table = torch.cat([r.sin(), r.cos(), q.sin(), q.cos()], dim=1)
    return table.float().unsqueeze(0)
