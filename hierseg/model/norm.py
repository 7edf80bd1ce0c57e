"""The LayerNorm of every CAST block: eps 1e-6, the ``norm_layer`` the official variants give timm.

Graph pooling's ``fc1``/``fc2`` norms are the one exception: the official code builds them with
PyTorch's default eps (1e-5), and the parity fixture needs it (see ``official/graph_pool.py``).
"""
from functools import partial

from torch import nn

LayerNorm = partial(nn.LayerNorm, eps=1e-6)
