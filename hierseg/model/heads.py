"""Output heads on the cls feature: MoCo-v3 projector and predictor MLPs."""
from __future__ import annotations

from torch import nn


def mlp_bn(in_dim: int, hidden_dim: int, out_dim: int, num_layers: int) -> nn.Sequential:
    """MoCo-v3 MLP: (Linear, BN, ReLU) x (num_layers-1), then Linear and a BN without affine.

    Linear layers have no bias (BN follows each). Indices match the official ``head``/``predictor``
    Sequentials: Linear at 0/3/6, BN at 1/4/7.
    """
    layers: list[nn.Module] = []
    for i in range(num_layers):
        d_in = in_dim if i == 0 else hidden_dim
        d_out = out_dim if i == num_layers - 1 else hidden_dim
        layers.append(nn.Linear(d_in, d_out, bias=False))
        if i < num_layers - 1:
            layers += [nn.BatchNorm1d(d_out), nn.ReLU(inplace=True)]
        else:
            layers.append(nn.BatchNorm1d(d_out, affine=False))
    return nn.Sequential(*layers)
