"""Position tables for the feature grid."""
from __future__ import annotations

import torch


def sincos_2d(grid_size: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sin-cos table of the MoCo-v3 family: (1, grid_size**2, dim), row-major.

    Cell k sits at row r = k // grid_size and column q = k % grid_size; its vector is
    [sin(r w), cos(r w), sin(q w), cos(q w)] with w_d = 10000 ** (-d / (dim / 4)).
    """
    rows, cols = torch.meshgrid(
        torch.arange(grid_size, dtype=torch.float64), torch.arange(grid_size, dtype=torch.float64), indexing="ij"
    )
    return sincos_points(rows.reshape(-1), cols.reshape(-1), dim).unsqueeze(0)


def sincos_points(rows: torch.Tensor, cols: torch.Tensor, dim: int) -> torch.Tensor:
    """The same sin-cos code at any (possibly fractional) positions: (P,) rows and cols -> (P, dim)."""
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64, device=rows.device) / quarter)
    r = rows.double().reshape(-1, 1) * omega
    q = cols.double().reshape(-1, 1) * omega
    return torch.cat([r.sin(), r.cos(), q.sin(), q.cos()], dim=1).float()
