"""Output heads on the cls feature: the classifier, MoCo-v3 projector and predictor MLPs."""
from __future__ import annotations

from torch import nn


class LinearClassifier(nn.Linear):
    """The classifier as one linear map, cls feature (B, C) -> logits (B, num_classes). State-dict keys:
    ``weight``, ``bias`` (as the official checkpoints' ``head``)."""

    feature = None  # no feature layer

    @property
    def classifier(self) -> nn.Linear:
        """The layer that gives the logits: the whole head."""
        return self


class WideClassifier(nn.Sequential):
    """``feature``: Linear(C, width), then ``classifier``: Linear(width, num_classes). The width-wide
    feature lets tokens regress a teacher's penultimate features and the classifier be the teacher's.
    State-dict keys stay ``nn.Sequential``'s (``0.*`` feature, ``1.*`` classifier), so checkpoints load unchanged."""

    def __init__(self, dim: int, width: int, num_classes: int) -> None:
        super().__init__(nn.Linear(dim, width), nn.Linear(width, num_classes))

    @property
    def feature(self) -> nn.Linear:
        return self[0]

    @property
    def classifier(self) -> nn.Linear:
        return self[1]


def classifier_head(dim: int, num_classes: int, width: int = 0) -> LinearClassifier | WideClassifier:
    """The classifier on ``dim``-wide features: ``WideClassifier`` with a ``width``, else ``LinearClassifier``.
    Both name their parts: ``.feature`` (None for the linear one) and ``.classifier``."""
    return WideClassifier(dim, width, num_classes) if width else LinearClassifier(dim, num_classes)


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
