"""Train CAST with an image-level objective: supervised (DeiT recipe), MoCo-v3 or distillation.

    python -m training.train distill_default data_root=/work/shared/data
    python -m training.train supervised_imagenet data_root=/data train_data='["imagefolder:imagenet:train"]'
    torchrun --nproc_per_node=8 -m training.train moco_imagenet data_root=/data
    python -m training.train distill_default data_root=/work/shared/data --resume

CONFIG is a JSON file (a path, or a name in ``training/configs/``) that overrides ``DEFAULTS`` below;
``key=value`` arguments override it (values parse as JSON, else as strings; ``a.b=v`` sets a nested
key). The run folder ``out_dir`` receives ``log.jsonl``, ``last.pt`` (full training state, for resuming
only) and, at the end, ``model/``: a hierseg checkpoint that ``hierseg.load_segmenter`` reads directly.

Everything random is a function of the seed: the batch order of (seed, epoch), each image's
augmentation of (seed, epoch, index), dropout of (seed, rank) and the RNG states saved in ``last.pt``.
So ``--resume`` after a crash or ``kill -9`` continues with exactly the losses an uninterrupted run
would have produced, and N processes at a global batch B match one process at batch B.
"""
from __future__ import annotations

import dataclasses
import datetime
import importlib.util
import json
import math
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from timm.data import Mixup
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from hierseg.checkpoints import CheckpointConfig, save_checkpoint
from hierseg.class_names import imagenet_class_names
from hierseg.model import build_cast, variant_config
from hierseg.preprocess import IMAGENET_MEAN, IMAGENET_STD, InputConfig
from hierseg.superpixels import PRESETS, SuperpixelConfig
from training.data import (
    EpochBatches, ResizedImages, SuperpixelImages, byol_views, concat_lists, deit_views, distill_views, eval_view,
    list_images, tinyimagenet_to_imagenet,
)
from training.objectives import Distill, HybridDistill, MoCo, Supervised, moco_momentum, segment_logits
from training.teacher import TEACHER_MEAN, TEACHER_NAME, TEACHER_STD, Teacher, cached_teacher_logits
from training.vit_baseline import PatchViT, save_vit

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

DEFAULTS: dict[str, Any] = {
    "name": "",  # checkpoint name; defaults to the config file's name
    "objective": "supervised",  # supervised | moco | distill | hybrid_distill (the teacher sees the student's view)
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
    if not argv:
        sys.exit(__doc__)
    source = Path(argv[0])
    if not source.is_file():
        source = CONFIG_DIR / (argv[0] if argv[0].endswith(".json") else f"{argv[0]}.json")
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
    spec = dict(spec)
    normalisation = spec.pop("normalisation", "imagenet")
    mean, std = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD), "teacher": (TEACHER_MEAN, TEACHER_STD)}[normalisation]
    return InputConfig(size=size, mean=mean, std=std, **spec)


def superpixel_config(spec: dict[str, Any]) -> SuperpixelConfig:
    spec = dict(spec)
    preset = spec.pop("preset", None)
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown superpixel preset {preset!r}; known: {', '.join(PRESETS)}")
    base = PRESETS[preset].to_dict() if preset else {}
    return SuperpixelConfig.from_dict({**base, **spec})


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes whose gradient is again the sum over processes (each rank holds one loss term)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the batch of all processes, for CPU/gloo runs (torch's SyncBatchNorm needs a GPU).

    Same parameters and buffers as BatchNorm, so state dicts do not change. The reductions are
    differentiable all-reduces, so gradients are those of BatchNorm on the concatenated batch.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.tensor(float(x.numel() // x.shape[1]))
        dist.all_reduce(count)
        mean = _AllReduceSum.apply(x.sum(dims)) / count
        centred = x - mean.view(shape)
        var = _AllReduceSum.apply(centred.square().sum(dims)) / count
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            self.running_mean.lerp_(mean.detach(), self.momentum)
            self.running_var.lerp_(var.detach() * count / (count - 1), self.momentum)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        return out * self.weight.view(shape) + self.bias.view(shape) if self.affine else out


def to_global_batchnorm(module: nn.Module) -> nn.Module:
    """Swap every BatchNorm for GlobalBatchNorm in place, keeping its tensors."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, GlobalBatchNorm):
            child.__class__ = GlobalBatchNorm
        else:
            to_global_batchnorm(child)
    return module


def lr_at(step: int, cfg: dict[str, Any], peak: float, warmup_steps: int, total_steps: int) -> float:
    """Linear warmup from warmup_lr to the peak, then a half cosine down to min_lr (per step)."""
    if step < warmup_steps:
        return cfg["warmup_lr"] + (peak - cfg["warmup_lr"]) * step / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return cfg["min_lr"] + (peak - cfg["min_lr"]) * 0.5 * (1.0 + math.cos(math.pi * progress))


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else whatever ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, then rename: a crash mid-write never leaves a broken ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


@torch.no_grad()
def evaluate(model: nn.Module, cfg: dict[str, Any], sp_config: SuperpixelConfig, in_config: InputConfig,
             class_names: list[str], train_classes: list[str], teacher: Teacher | None, device: torch.device) -> dict[str, Any]:
    """Score the held-out sets through the serving preprocessing: accuracy against labels, and top-1
    agreement with the teacher (on the same views) when distilling."""
    model.eval()
    metrics: dict[str, Any] = {}
    # Views of the whole image keep their aspect ratio under "long_side": one image per batch then.
    per_batch = 64 if in_config.resize == "square" else 1
    for spec in cfg["eval_data"]:
        images = list_images(spec, cfg["data_root"])
        dataset = SuperpixelImages(images, eval_view(), sp_config, in_config)
        batches = [[(0, i) for i in range(s, min(s + per_batch, len(images)))] for s in range(0, len(images), per_batch)]
        loader = DataLoader(dataset, batch_sampler=batches, num_workers=cfg["num_workers"])
        logits, levels, t_logits = [], [], []
        for batch in tqdm(loader, desc=f"eval {spec}", leave=False):
            x = batch["images"][:, 0].to(device)
            out = model(x, batch["superpixels"][:, 0].to(device))
            logits.append(out.logits.float().cpu())
            levels.append(torch.stack([z.float().cpu() for z in segment_logits(model, out)], dim=1))
            if teacher is not None:
                t_logits.append(teacher(x).cpu())
        logits, levels = torch.cat(logits), torch.cat(levels)  # (N, C), (N, levels, C)
        result: dict[str, Any] = {"images": len(images)}
        top5 = logits.topk(min(5, logits.shape[1])).indices
        labels = torch.from_numpy(images.labels)
        if cfg["objective"] == "supervised" and images.classes == train_classes:
            result["top1"] = (logits.argmax(-1) == labels).float().mean().item()
            result["top5"] = (top5 == labels[:, None]).any(-1).float().mean().item()
        elif spec.startswith("tinyimagenet:") and cfg["class_names"] == "imagenet":
            # Tiny-ImageNet ids -> ImageNet-1k indices; images of unmapped classes are not scored.
            mapping = tinyimagenet_to_imagenet(Path(cfg["data_root"] or "", spec.split(":")[1]), class_names)
            target = torch.tensor([mapping.get(c, -1) for c in images.classes])[labels]
            result["mapped_classes"] = f"{len(mapping)}/{len(images.classes)}"
            labels, keep = target, target >= 0
            result["top1"] = (logits.argmax(-1) == labels)[keep].float().mean().item()
            result["top5"] = (top5 == labels[:, None]).any(-1)[keep].float().mean().item()
        if teacher is not None:
            t_top1 = torch.cat(t_logits).argmax(-1)
            result["agree_top1"] = (logits.argmax(-1) == t_top1).float().mean().item()
            result["agree_top1_segments_per_level"] = [(levels[:, l].argmax(-1) == t_top1).float().mean().item()
                                                       for l in range(levels.shape[1])]
            if "top1" in result:
                result["teacher_top1"] = (t_top1 == labels)[labels >= 0].float().mean().item()
        metrics[spec] = result
    return metrics


def main(argv: list[str] | None = None) -> nn.Module:
    """Run the training a config describes; returns the trained CAST model of this process."""
    cfg = load_config(sys.argv[1:] if argv is None else argv)
    started = time.time()

    # -------------------------------------------------------------------------------- processes
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = cfg["device"] == "cuda" or (cfg["device"] == "auto" and torch.cuda.is_available())
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    main_process = rank == 0
    out_dir = Path(cfg["out_dir"])
    if main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
    # Dropout/drop-path streams differ per rank (like separate GPUs); data randomness does not use them.
    torch.manual_seed(cfg["seed"] + rank)
    np.random.seed(cfg["seed"] + rank)
    random.seed(cfg["seed"] + rank)

    # -------------------------------------------------------------------------------- data
    sp_config = superpixel_config(cfg["superpixels"])
    objective_name = cfg["objective"]
    train_images = concat_lists([list_images(spec, cfg["data_root"]) for spec in cfg["train_data"]])
    class_names = imagenet_class_names() if cfg["class_names"] == "imagenet" else train_images.classes
    model_cfg = dict(cfg["model_overrides"])
    if objective_name in ("supervised", "distill", "hybrid_distill"):
        model_cfg["num_classes"] = len(class_names)
    if cfg["model"].startswith("vit_baseline:"):  # the paper's ViT baseline, sized like the named CAST variant
        model = PatchViT(variant_config(cfg["model"].split(":", 1)[1], **model_cfg))
    else:
        model = build_cast(cfg["model"], init=cfg["init"], **model_cfg)
    img_size = model.config.img_size
    in_config = input_config(cfg["input"], img_size)
    augment = cfg["augment"]
    if augment == "distill":
        views = distill_views(img_size, cfg["crop_scale"], cfg["color_jitter"])
    elif augment == "byol":
        views = byol_views(img_size, cfg["crop_scale"])
    elif augment == "deit":
        views = deit_views(img_size, cfg["auto_augment"], cfg["re_prob"], in_config.mean, in_config.std)
    else:
        raise ValueError(f"unknown augment {augment!r}")
    dataset = SuperpixelImages(train_images, views, sp_config, in_config, cfg["seed"], cfg["preload"])
    sampler = EpochBatches(len(dataset), cfg["batch_size"], cfg["seed"], rank, world)
    # A private generator: creating loader iterators must not consume the global RNG (resume equality).
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg["num_workers"],
                        generator=torch.Generator(), pin_memory=use_cuda)
    steps_per_epoch = sampler.batches_per_epoch
    total_steps = max(1, round(cfg["epochs"] * steps_per_epoch))  # fractional epochs allowed

    # -------------------------------------------------------------------------------- objective
    teacher = None
    teacher_logits = None
    if objective_name == "supervised":
        objective: nn.Module = Supervised(model, cfg["label_smoothing"], cfg["segment_weight"])
    elif objective_name == "moco":
        objective = MoCo(model, cfg["moco_temperature"])
    elif objective_name == "distill":
        objective = Distill(model, cfg["distill_temperature"], cfg["segment_weight"])
        teacher = Teacher(in_config.mean, in_config.std).to(device)
        if cfg["teacher"] == "cache":
            size = cfg["teacher_size"] or img_size
            if main_process:  # one process computes the file, the others read it
                cached_teacher_logits(teacher, ResizedImages(dataset, size), train_images.ids, size,
                                      cfg["teacher_cache_dir"] or out_dir, num_workers=cfg["num_workers"])
            if world > 1:
                dist.barrier()
            teacher_logits = cached_teacher_logits(teacher, ResizedImages(dataset, size), train_images.ids, size,
                                                   cfg["teacher_cache_dir"] or out_dir)
    elif objective_name == "hybrid_distill":
        teacher = Teacher(in_config.mean, in_config.std)
        # The stem is the teacher's body; the classifier behind the 1280-d feature layer is the teacher's.
        # (On --resume both are overwritten by the saved state, which holds the same tensors.)
        model.stem.load_state_dict(teacher.body_state_dict())
        model.head[1].load_state_dict(teacher.net.classifier.state_dict())
        model.head[1].requires_grad_(False)
        objective = HybridDistill(model, teacher, cfg["distill_temperature"], cfg["feature_weight"], cfg["dense_weight"])
    else:
        raise ValueError(f"unknown objective {objective_name!r}")
    objective.to(device)
    if world > 1 and cfg["sync_bn"]:
        objective = nn.SyncBatchNorm.convert_sync_batchnorm(objective) if use_cuda else to_global_batchnorm(objective)
    mixup = None
    if objective_name == "supervised" and (cfg["mixup_alpha"] > 0 or cfg["cutmix_alpha"] > 0):
        mixup = Mixup(mixup_alpha=cfg["mixup_alpha"], cutmix_alpha=cfg["cutmix_alpha"],
                      label_smoothing=cfg["label_smoothing"], num_classes=len(class_names))

    # -------------------------------------------------------------------------------- optimiser
    skip_decay = model.no_weight_decay()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        exempt = not cfg["decay_norm_and_bias"] and (p.ndim <= 1 or name in skip_decay)
        (no_decay if exempt else decay).append(p)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=0.0, betas=tuple(cfg["betas"]))
    peak_lr = cfg["base_lr"] * cfg["batch_size"] / cfg["lr_batch_ref"]
    warmup_steps = round(cfg["warmup_epochs"] * steps_per_epoch)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg["amp"]) if use_cuda else None
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    # -------------------------------------------------------------------------------- resume
    step, elapsed_before = 0, 0.0
    last_path = out_dir / "last.pt"
    if cfg["resume"] and last_path.exists():
        state = torch.load(last_path, map_location=device, weights_only=False)
        objective.load_state_dict(state["objective"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        step, elapsed_before = state["step"], state["elapsed_s"]
        if len(state["rng"]) == world:
            set_rng_state(state["rng"][rank])
        elif main_process:
            print(f"resuming with {world} processes instead of {len(state['rng'])}: dropout streams are re-seeded")
        if main_process:
            print(f"resumed from {last_path} at step {step}")
    elif cfg["resume"] and main_process:
        print(f"resume requested but {last_path} does not exist: starting from scratch")

    # pool 4 only gets gradient from the segment-token term; without it DDP must tolerate unused parameters.
    unused = not model.config.freeze_last_pool and cfg["segment_weight"] == 0
    net = DistributedDataParallel(objective, device_ids=[local_rank] if use_cuda else None,
                                  find_unused_parameters=unused) if world > 1 else objective

    def checkpoint() -> None:
        rngs = [None] * world
        if world > 1:
            dist.all_gather_object(rngs, rng_state())
        else:
            rngs = [rng_state()]
        if main_process:
            save_atomic({"step": step, "elapsed_s": elapsed_before + time.time() - started,
                         "objective": objective.state_dict(), "optimizer": optimizer.state_dict(),
                         "scaler": scaler.state_dict(), "rng": rngs, "config": cfg}, last_path)

    # -------------------------------------------------------------------------------- train
    end_step = min(total_steps, cfg["stop_step"] or total_steps)
    log_file = open(out_dir / "log.jsonl", "a") if main_process else None
    writer = None
    if main_process and importlib.util.find_spec("tensorboard") is not None:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(out_dir))
    if main_process:
        print(f"{objective_name}: {len(dataset)} images, {steps_per_epoch} steps/epoch x {cfg['epochs']} epochs "
              f"= {total_steps} steps at batch {cfg['batch_size']} on {world} x {device}; peak lr {peak_lr:.3g}")
    bar = tqdm(total=total_steps * cfg["batch_size"], initial=step * cfg["batch_size"], unit="img",
               unit_scale=True, dynamic_ncols=True, disable=not main_process)
    objective.train()
    tick, tick_step = time.time(), step
    while step < end_step:
        epoch, batch_in_epoch = divmod(step, steps_per_epoch)
        sampler.set_position(epoch, batch_in_epoch)
        for batch in loader:
            lr = lr_at(step, cfg, peak_lr, warmup_steps, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            images = batch["images"].to(device, non_blocking=True)
            superpixels = batch["superpixels"].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                if objective_name == "moco":
                    extra = moco_momentum(step, total_steps, cfg["moco_momentum"])
                    loss, logs = net(images, superpixels, extra)
                elif objective_name == "hybrid_distill":
                    loss, logs = net(images[:, 0], superpixels[:, 0])
                elif objective_name == "distill":
                    if teacher_logits is not None:
                        target = teacher_logits[batch["index"]].to(device)
                    else:
                        target = teacher(images[:, 0])
                    loss, logs = net(images[:, 0], superpixels[:, 0], target)
                else:
                    x, target = images[:, 0], batch["label"].to(device)
                    if mixup is not None:
                        x, target = mixup(x, target)
                    loss, logs = net(x, superpixels[:, 0], target)
            # One all-reduce for the loss and its parts: logging, and every rank agrees on the NaN check.
            values = torch.stack([loss.detach().float(), *[v.float() for v in logs.values()]])
            if world > 1:
                dist.all_reduce(values)
                values /= world
            values = values.tolist()
            if not math.isfinite(values[0]):
                bar.close()
                message = (f"loss is {values[0]} at step {step}; stopping. The last good training state is "
                           f"{last_path} (written every {cfg['ckpt_every']} steps); nothing was written after it.")
                if world > 1:
                    dist.destroy_process_group()
                raise FloatingPointError(message)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg["grad_clip"]:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
            scaler.step(optimizer)
            scaler.update()
            step += 1
            bar.update(cfg["batch_size"])

            if main_process and (step % cfg["log_every"] == 0 or step == end_step):
                now = time.time()
                record = {"step": step, "epoch": step / steps_per_epoch, "lr": lr, "loss": values[0],
                          **dict(zip(logs, values[1:])),
                          "images_per_s": (step - tick_step) * cfg["batch_size"] / (now - tick),
                          "elapsed_s": elapsed_before + now - started}
                if objective_name == "moco":
                    record["momentum"] = extra
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                if writer is not None:
                    for key, value in record.items():
                        writer.add_scalar(f"train/{key}", value, step)
                bar.set_postfix(loss=f"{values[0]:.4f}", lr=f"{lr:.2e}")
                tick, tick_step = now, step
            if step % cfg["ckpt_every"] == 0 or step == end_step:
                checkpoint()
            if step >= end_step:
                break
    bar.close()

    # -------------------------------------------------------------------------------- final model
    if step >= total_steps and main_process:
        wall = elapsed_before + time.time() - started
        serve_config = dataclasses.replace(in_config, size=cfg["serve_size"] or img_size)
        metrics = evaluate(model, cfg, sp_config, serve_config, class_names, train_images.classes, teacher, device)
        provenance = {
            "recipe": cfg["name"],
            "objective": objective_name,
            "config": cfg,
            "command": " ".join(["torchrun", f"--nproc_per_node={world}"] if world > 1 else ["python"])
            + " -m training.train " + " ".join(sys.argv[1:] if argv is None else argv),
            "data": {spec: len(list_images(spec, cfg["data_root"])) for spec in cfg["train_data"]},
            "teacher": TEACHER_NAME if teacher is not None else None,
            "steps": total_steps,
            "images_seen": total_steps * cfg["batch_size"],
            "wall_time_s": round(wall, 1),
            "hardware": {"device": torch.cuda.get_device_name(device) if use_cuda else cpu_name(),
                         "processes": world, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                         "torch": torch.__version__, "python": platform.python_version()},
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        config = CheckpointConfig(model=model.config, superpixels=sp_config, class_names=list(class_names),
                                  input=serve_config, name=cfg["name"], provenance=provenance, metrics=metrics)
        if isinstance(model, PatchViT):
            save_vit(model, out_dir / "model", provenance={**provenance, "metrics": metrics})
        else:
            save_checkpoint(model, config, out_dir / "model")
        log_file.write(json.dumps({"step": step, "final": True, "metrics": metrics, "wall_time_s": wall}) + "\n")
        print(json.dumps(metrics, indent=1))
        print(f"model written to {out_dir / 'model'} after {wall / 60:.1f} min")
    if log_file is not None:
        log_file.close()
    if writer is not None:
        writer.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return model


if __name__ == "__main__":
    main()
