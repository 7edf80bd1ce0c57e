"""Training data: image lists, augmentations, superpixels computed on the augmented view, batch order.

Three on-disk layouts, each named by a spec string ``format:path:split`` (path relative to a data root
given on the command line):

* ``imagefolder:/data/imagenet:train`` -- ImageNet layout, ``path/split/<class>/<image>``;
* ``tinyimagenet:tinyimagenet_animals59:train`` -- Tiny-ImageNet, ``train/<wnid>/images/*.JPEG`` and
  ``val/images`` + ``val/val_annotations.txt``; classes are the ids in ``wnids.txt``;
* ``caltech101:caltech101_160:train`` -- ``images/<class>/<file>`` listed by ``train.txt``/``test.txt``;
* ``images:bsds500/images:train`` -- every image file in ``path/split``, unlabelled (one class "image").

Reproducibility: the batch order is a function of (seed, epoch) only, and every sample's augmentation
is drawn from generators seeded by (seed, epoch, sample index). Nothing depends on the number of
DataLoader workers or processes, so a run can be resumed mid-epoch by skipping batches, and a DDP run
sees exactly the images a one-process run at the same global batch sees.
"""
from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler
from torchvision import transforms as T

from hierseg.imageio import load_image
from hierseg.preprocess import InputConfig, normalise, prepare_view
from hierseg.resize import resize_rgb
from hierseg.superpixels import SuperpixelConfig

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


# --------------------------------------------------------------------------------------------------
# Image lists


@dataclass
class ImageList:
    """A labelled list of images. ``ids`` name each image uniquely (cache keys); ``labels`` index ``classes``."""

    ids: list[str]
    paths: list[Path]
    labels: np.ndarray  # (N,) int64
    classes: list[str]

    def __len__(self) -> int:
        return len(self.paths)


def _list_imagefolder(root: Path, split: str) -> ImageList:
    folder = root / split
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    paths, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(f for f in (folder / name).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        paths += files
        labels += [label] * len(files)
    return ImageList([str(p.relative_to(root)) for p in paths], paths, np.array(labels, dtype=np.int64), classes)


def _list_tinyimagenet(root: Path, split: str) -> ImageList:
    classes = (root / "wnids.txt").read_text().split()
    index = {w: i for i, w in enumerate(classes)}
    if split == "train":
        pairs = [(f, w) for w in classes for f in sorted((root / "train" / w / "images").glob("*.JPEG"))]
    elif split == "val":
        rows = [line.split("\t") for line in (root / "val" / "val_annotations.txt").read_text().splitlines() if line]
        pairs = [(root / "val" / "images" / r[0], r[1]) for r in rows]
    else:
        raise ValueError(f"Tiny-ImageNet split must be train or val, not {split!r}")
    paths = [p for p, _ in pairs]
    labels = np.array([index[w] for _, w in pairs], dtype=np.int64)
    return ImageList([str(p.relative_to(root)) for p in paths], paths, labels, classes)


def _list_caltech101(root: Path, split: str) -> ImageList:
    if split not in ("train", "test"):
        raise ValueError(f"Caltech-101 split must be train or test, not {split!r}")
    rel = [line.strip() for line in (root / f"{split}.txt").read_text().splitlines() if line.strip()]
    classes = sorted(p.name for p in (root / "images").iterdir() if p.is_dir())
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[r.split("/")[0]] for r in rel], dtype=np.int64)
    return ImageList(rel, [root / "images" / r for r in rel], labels, classes)


def _list_plain_images(root: Path, split: str) -> ImageList:
    paths = sorted(f for f in (root / split).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    return ImageList([str(p.relative_to(root)) for p in paths], paths, np.zeros(len(paths), dtype=np.int64), ["image"])


LAYOUTS: dict[str, Callable[[Path, str], ImageList]] = {
    "images": _list_plain_images,
    "imagefolder": _list_imagefolder,
    "tinyimagenet": _list_tinyimagenet,
    "caltech101": _list_caltech101,
}


def list_images(spec: str, data_root: str | Path | None = None) -> ImageList:
    """Parse ``format:path:split`` and list that split. ``path`` is taken relative to ``data_root``."""
    parts = spec.split(":")
    if len(parts) != 3 or parts[0] not in LAYOUTS:
        raise ValueError(f"data spec {spec!r} is not 'format:path:split' with format in {sorted(LAYOUTS)}")
    layout, path, split = parts
    root = Path(data_root, path) if data_root is not None else Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist (spec {spec!r}, data_root {data_root!r})")
    images = LAYOUTS[layout](root, split)
    if not len(images):
        raise ValueError(f"no images in {root} split {split!r}")
    images.ids = [f"{layout}:{path}:{split}/{i}" for i in images.ids]
    return images


def concat_lists(lists: Sequence[ImageList]) -> ImageList:
    """One list; class indices of later lists are shifted past the earlier lists' classes."""
    offsets = np.cumsum([0] + [len(x.classes) for x in lists[:-1]])
    return ImageList(
        ids=[i for x in lists for i in x.ids],
        paths=[p for x in lists for p in x.paths],
        labels=np.concatenate([x.labels + off for x, off in zip(lists, offsets, strict=True)]),
        classes=[c for x in lists for c in x.classes],
    )


def tinyimagenet_to_imagenet(root: str | Path, imagenet_names: Sequence[str]) -> dict[str, int]:
    """Map Tiny-ImageNet wnids to ImageNet-1k indices: first ``words.txt`` synonym == a category name.

    Returns only the ids that map (all 59 animal classes do).
    """
    root = Path(root)
    by_name = {name.lower(): i for i, name in enumerate(imagenet_names)}
    words = dict(line.split("\t", 1) for line in (root / "words.txt").read_text().splitlines() if "\t" in line)
    out = {}
    for wnid in (root / "wnids.txt").read_text().split():
        first = words.get(wnid, "").split(",")[0].strip().lower()
        if first in by_name:
            out[wnid] = by_name[first]
    return out


# --------------------------------------------------------------------------------------------------
# Augmentations (PIL in, PIL out); each returns one view per entry of the list


def distill_views(img_size: int, crop_scale: Sequence[float], color_jitter: float) -> Callable[[Image.Image], list[Image.Image]]:
    """One view: RandomResizedCrop + flip + mild colour jitter (the default checkpoint's recipe)."""
    steps: list[Callable] = [T.RandomResizedCrop(img_size, scale=tuple(crop_scale)), T.RandomHorizontalFlip()]
    if color_jitter > 0:
        # Brightness, contrast and saturation only: PIL hue shifts cost more than the rest of the pipeline.
        steps.append(T.ColorJitter(color_jitter, color_jitter, color_jitter))
    pipeline = T.Compose(steps)
    return lambda im: [pipeline(im)]


def byol_views(img_size: int, crop_scale: Sequence[float]) -> Callable[[Image.Image], list[Image.Image]]:
    """MoCo-v3's two asymmetric BYOL views: blur always on view 1, rarely on view 2, solarize on view 2 only."""
    kernel = max(3, img_size // 10) | 1  # about 10% of the side, odd

    def view(blur_p: float, solarize_p: float) -> T.Compose:
        return T.Compose([
            T.RandomResizedCrop(img_size, scale=tuple(crop_scale)),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            T.RandomApply([T.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=blur_p),
            T.RandomSolarize(128, p=solarize_p),
            T.RandomHorizontalFlip(),
        ])

    first, second = view(1.0, 0.0), view(0.1, 0.2)
    return lambda im: [first(im), second(im)]


def deit_views(img_size: int, auto_augment: str, re_prob: float, mean: Sequence[float], std: Sequence[float]) -> Callable:
    """DeiT's timm pipeline: RandomResizedCrop (bicubic) + flip + RandAugment, then tensor, normalise, erase.

    Returns tensors, already normalised (random erasing works on them); the superpixels are computed on
    the de-normalised view like the official code, but clipped to 0..255 instead of wrapping.
    """
    from timm.data import create_transform

    pipeline = create_transform(img_size, is_training=True, auto_augment=auto_augment, interpolation="bicubic",
                                re_prob=re_prob, re_mode="pixel", re_count=1, mean=tuple(mean), std=tuple(std))
    return lambda im: [pipeline(im)]


AUGMENTATIONS = ("deit", "byol", "distill")


def augmentation(name: str, img_size: int, input_config: InputConfig, crop_scale: Sequence[float] = (0.08, 1.0),
                 color_jitter: float = 0.0, auto_augment: str = "rand-m9-mstd0.5-inc1", re_prob: float = 0.25) -> Callable:
    """The training views ``name`` makes (one of ``AUGMENTATIONS``); the other arguments are the ones it reads."""
    if name == "distill":
        return distill_views(img_size, crop_scale, color_jitter)
    if name == "byol":
        return byol_views(img_size, crop_scale)
    if name == "deit":
        return deit_views(img_size, auto_augment, re_prob, input_config.mean, input_config.std)
    raise ValueError(f"unknown augment {name!r}; known: {', '.join(AUGMENTATIONS)}")


def eval_view() -> Callable[[Image.Image], list[Image.Image]]:
    """The whole image; ``hierseg.preprocess.prepare_view`` then makes the model's view, as at inference."""
    return lambda im: [im]


# --------------------------------------------------------------------------------------------------
# Datasets


@contextlib.contextmanager
def seeded(*key: int) -> Iterator[None]:
    """Seed torch, numpy and python RNGs from ``key`` inside the block and restore them afterwards.

    Augmentations draw from the global RNGs; restoring keeps the caller's streams (dropout, mixup) intact
    when the dataset runs in the main process.
    """
    seed = int(np.random.SeedSequence([k & 0xFFFFFFFF for k in key]).generate_state(1)[0])
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


class SuperpixelImages(Dataset):
    """Augmented views of an image list, each made into the model's input by ``prepare_view``.

    The view (a crop, or the whole image for evaluation) goes through the same preprocessing as at
    inference: resize per ``input_config``, superpixels on the resulting uint8 pixels, normalisation.
    Index with ``(epoch, i)``: the augmentation is seeded by (seed, epoch, i). Returns a dict with
    ``images`` (V, 3, h, w) float, ``superpixels`` (V, h, w) int64, ``label`` and ``index``.
    """

    def __init__(
        self,
        images: ImageList,
        views: Callable[[Image.Image], list],
        superpixels: SuperpixelConfig,
        input_config: InputConfig,
        seed: int = 0,
        preload: bool = False,
    ) -> None:
        self.images = images
        self.views = views
        self.superpixels = superpixels
        self.input_config = input_config
        self.mean = torch.tensor(input_config.mean).view(3, 1, 1)
        self.std = torch.tensor(input_config.std).view(3, 1, 1)
        self.seed = seed
        # Decoded uint8 arrays, shared copy-on-write with forked workers.
        self.arrays = [load_image(p) for p in images.paths] if preload else None

    def __len__(self) -> int:
        return len(self.images)

    def rgb(self, i: int) -> np.ndarray:
        """Image i as the segmenter decodes a photo: upright, RGB, long side capped (``hierseg.imageio``)."""
        return self.arrays[i] if self.arrays is not None else load_image(self.images.paths[i])

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, i = key
        with seeded(self.seed, epoch, i):
            views = self.views(Image.fromarray(self.rgb(i)))
        tensors, maps = [], []
        for view in views:
            if isinstance(view, torch.Tensor):  # already normalised (timm pipeline, random erasing included)
                rgb = ((view * self.std + self.mean) * 255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
                prepared = prepare_view(np.ascontiguousarray(rgb), self.input_config, self.superpixels)
                if prepared.pixels.shape == view.shape:
                    prepared.pixels = view
            else:
                prepared = prepare_view(np.array(view), self.input_config, self.superpixels)
            tensors.append(prepared.pixels)
            maps.append(torch.from_numpy(prepared.superpixels.astype(np.int64)))
        return {
            "images": torch.stack(tensors),
            "superpixels": torch.stack(maps),
            "label": torch.tensor(int(self.images.labels[i])),
            "index": torch.tensor(i),
        }


class ResizedImages(Dataset):
    """Un-augmented images squashed to ``size`` and normalised, with their index (teacher inputs)."""

    def __init__(self, source: SuperpixelImages, size: int) -> None:
        self.source = source
        self.size = size

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        config = self.source.input_config
        return normalise(resize_rgb(self.source.rgb(i), self.size, self.size), config.mean, config.std), i


# --------------------------------------------------------------------------------------------------
# Batch order


class EpochBatches(Sampler):
    """This rank's share of every global batch, as lists of ``(epoch, index)`` keys.

    The permutation of epoch e is ``randperm(n)`` seeded by (seed, e); global batch b is its slice
    ``[b*B, (b+1)*B)`` (the remainder is dropped) and rank r takes the r-th of ``world`` equal parts.
    Iteration starts at (``epoch``, ``start_batch``) and runs to the end of that epoch.
    """

    def __init__(self, size: int, global_batch: int, seed: int, rank: int = 0, world: int = 1) -> None:
        if global_batch % world:
            raise ValueError(f"global batch {global_batch} is not divisible by {world} processes")
        if size < global_batch:
            raise ValueError(f"{size} images cannot fill one batch of {global_batch}")
        self.size, self.global_batch, self.seed, self.rank, self.world = size, global_batch, seed, rank, world
        self.epoch, self.start_batch = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        return self.size // self.global_batch

    def set_position(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        g = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1)[0]))
        order = torch.randperm(self.size, generator=g).tolist()
        local = self.global_batch // self.world
        for b in range(self.start_batch, self.batches_per_epoch):
            start = b * self.global_batch + self.rank * local
            yield [(self.epoch, i) for i in order[start:start + local]]
