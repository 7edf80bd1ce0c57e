"""A training run's configuration: plain data, ``DEFAULTS`` overridden by a JSON recipe and the command line.

A recipe is a JSON file (a path, or a name in ``training/configs/``) holding some of the keys of
``DEFAULTS``; ``key=value`` arguments override it (values parse as JSON, else as strings; ``a.b=v``
sets a nested key) and ``--resume`` sets ``resume``.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from hierseg.preprocess import IMAGENET_MEAN, IMAGENET_STD, InputConfig
from hierseg.superpixels import PRESETS, SuperpixelConfig
from training.teacher import TEACHER_MEAN, TEACHER_STD

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

DEFAULTS: dict[str, Any] = {
    "name": "",  # checkpoint name; defaults to the config file's name
    "objective": "supervised",  # a name in training.objectives.OBJECTIVES: supervised | moco | distill | hybrid_distill
    "out_dir": "runs/train",
    "resume": False,  # continue from out_dir/last.pt
    "seed": 0,
    "device": "auto",  # auto (cuda when available) | cpu | cuda
    "threads": 0,  # torch CPU threads per process; 0 = torch's default
    # data
    "data_root": None,  # folder the data specs are relative to (command line or $HIERSEG_DATA)
    "train_data": [],  # "format:path:split" specs, see training/data.py
    "eval_data": [],  # held-out sets scored at the end (metrics go into the checkpoint)
    "preload": False,  # decode every training image into memory once (small data sets on CPU)
    "num_workers": 2,  # DataLoader workers per process (superpixels are computed there)
    "augment": "deit",  # deit | byol | distill
    "crop_scale": [0.08, 1.0],
    "color_jitter": 0.0,  # distill augmentation only
    "auto_augment": "rand-m9-mstd0.5-inc1",  # deit augmentation only
    "re_prob": 0.25,  # deit random erasing
    "superpixels": {"preset": "SEEDS_DEIT"},  # a hierseg.superpixels preset and/or SuperpixelConfig fields
    # hierseg.preprocess.InputConfig fields other than size; "normalisation": imagenet | teacher
    "input": {"resize": "square", "normalisation": "imagenet"},
    "serve_size": 0,  # the checkpoint's view size when served; 0 = the training img_size
    # model
    "model": "cast_small",
    "model_overrides": {},  # CASTConfig fields; num_classes is set from the objective
    # hierseg.model.init scheme for CAST models: official (the paper's: MoCo's Xavier or DeiT's) | moco |
    # deit | trunc_normal (hierseg's own, what the hybrid recipes ask for). The ViT baseline keeps timm's.
    "init": "official",
    "class_names": "data",  # data: the training set's classes | imagenet: the 1000 ImageNet-1k names
    "sync_bn": True,  # under DDP, BatchNorm statistics over the global batch (as official MoCo)
    # optimisation (AdamW, per-step linear warmup then cosine)
    "batch_size": 256,  # global, over all processes
    "epochs": 100,  # may be fractional (time-boxed runs)
    "base_lr": 5e-4,  # lr = base_lr * batch_size / lr_batch_ref
    "lr_batch_ref": 512,
    "warmup_epochs": 5.0,
    "warmup_lr": 1e-6,
    "min_lr": 1e-5,
    "weight_decay": 0.05,
    "betas": [0.9, 0.999],
    "decay_norm_and_bias": False,  # MoCo-v3 decays every parameter; DeiT skips 1-d ones and the tables
    "grad_clip": None,  # max global grad norm, or None
    "amp": "bf16",  # bf16 | fp16 | none; GPU only, CPU always runs float32
    # objectives
    "label_smoothing": 0.1,
    "mixup_alpha": 0.0,
    "cutmix_alpha": 0.0,
    "segment_weight": 0.0,  # weight of the segment-token term (supervised, distill)
    "moco_temperature": 0.2,
    "moco_momentum": 0.99,  # start of the cosine schedule to 1
    "distill_temperature": 1.0,
    "teacher": "cache",  # cache: logits of the un-augmented image, computed once | online: on every view
    "teacher_size": 0,  # teacher input size for the cache; 0 = the student's img_size
    "teacher_cache_dir": None,  # where cached logits live; None = out_dir
    "feature_weight": 1.0,  # hybrid_distill: cls feature regression of the teacher's image feature
    "dense_weight": 1.0,  # hybrid_distill: every node's feature regresses the teacher's map over its pixels
    # run
    "log_every": 20,
    "ckpt_every": 500,  # steps between last.pt writes (and one at the end)
    "stop_step": None,  # end this invocation after this step, as a time-boxed chunk; resume continues
}


def load_config(argv: list[str]) -> dict[str, Any]:
    """DEFAULTS <- the JSON config named by argv[0] <- key=value overrides (and --resume)."""
    source = Path(argv[0])
    if not source.is_file():
        source = CONFIG_DIR / (argv[0] if argv[0].endswith(".json") else f"{argv[0]}.json")
    if not source.is_file():
        recipes = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.json")))
        sys.exit(f"no config {argv[0]!r}: give a JSON file or one of {recipes}")
    cfg = {**DEFAULTS, "name": source.stem}
    overrides: list[tuple[str, Any]] = list(json.loads(source.read_text()).items())
    for arg in argv[1:]:
        if arg == "--resume":
            overrides.append(("resume", True))
            continue
        key, sep, raw = arg.partition("=")
        if not sep:
            sys.exit(f"argument {arg!r} is not key=value")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        overrides.append((key.lstrip("-"), value))
    for key, value in overrides:
        top, _, sub = key.partition(".")
        if top not in DEFAULTS:
            sys.exit(f"unknown config key {top!r}; known: {', '.join(DEFAULTS)}")
        if sub:
            cfg[top] = {**cfg[top], sub: value}
        else:
            cfg[top] = value
    cfg["data_root"] = cfg["data_root"] or os.environ.get("HIERSEG_DATA")
    return cfg


def input_config(spec: dict[str, Any], size: int) -> InputConfig:
    """The ``input`` entry at view size ``size``; ``normalisation`` names the mean/std (imagenet | teacher)."""
    spec = dict(spec)
    normalisation = spec.pop("normalisation", "imagenet")
    mean, std = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD), "teacher": (TEACHER_MEAN, TEACHER_STD)}[normalisation]
    return InputConfig(size=size, mean=mean, std=std, **spec)


def superpixel_config(spec: dict[str, Any]) -> SuperpixelConfig:
    """The ``superpixels`` entry: a preset's fields, overridden by the entry's other keys."""
    spec = dict(spec)
    preset = spec.pop("preset", None)
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown superpixel preset {preset!r}; known: {', '.join(PRESETS)}")
    base = PRESETS[preset].to_dict() if preset else {}
    return SuperpixelConfig.from_dict({**base, **spec})
