"""Train CAST with an image-level objective: supervised (DeiT recipe), MoCo-v3 or distillation.

    python -m training.train distill_default data_root=/work/shared/data
    python -m training.train supervised_imagenet data_root=/data train_data='["imagefolder:imagenet:train"]'
    torchrun --nproc_per_node=8 -m training.train moco_imagenet data_root=/data
    python -m training.train distill_default data_root=/work/shared/data --resume

CONFIG is a JSON file (a path, or a name in ``training/configs/``) that overrides ``DEFAULTS`` in
``training/config.py``; ``key=value`` arguments override it (values parse as JSON, else as strings;
``a.b=v`` sets a nested key). The run folder ``out_dir`` receives ``log.jsonl``, ``last.pt`` (full
training state, for resuming only) and, at the end, ``model/``: a hierseg checkpoint that
``hierseg.load_segmenter`` reads directly.

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
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from hierseg.checkpoints import CheckpointConfig, save_checkpoint
from hierseg.class_names import imagenet_class_names
from hierseg.model import build_cast, variant_config
from training.config import input_config, load_config, superpixel_config
from training.data import EpochBatches, SuperpixelImages, augmentation, concat_lists, list_images
from training.distributed import Processes, set_rng_state
from training.evaluation.held_out import evaluate_held_out
from training.objectives import Run, objective_class
from training.teacher import TEACHER_NAME
from training.vit_baseline import PatchViT, save_vit


def lr_at(step: int, cfg: dict[str, Any], peak: float, warmup_steps: int, total_steps: int) -> float:
    """Linear warmup from warmup_lr to the peak, then a half cosine down to min_lr (per step)."""
    if step < warmup_steps:
        return cfg["warmup_lr"] + (peak - cfg["warmup_lr"]) * step / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return cfg["min_lr"] + (peak - cfg["min_lr"]) * 0.5 * (1.0 + math.cos(math.pi * progress))


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, then rename: a crash mid-write never leaves a broken ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def hardware(processes: Processes) -> dict[str, Any]:
    """What the run ran on, for the checkpoint's provenance."""
    if processes.cuda:
        device = torch.cuda.get_device_name(processes.device)
    else:
        device = platform.processor() or "cpu"
        try:  # the CPU model, on Linux
            device = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                          if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
    return {"device": device, "processes": processes.world, "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version()}


def main(argv: list[str] | None = None) -> nn.Module:
    """Run the training a config describes; returns the trained model of this process."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if argv else 2)
    cfg = load_config(argv)
    started = time.time()

    # -------------------------------------------------------------------------------- processes
    processes = Processes.start(cfg["device"], cfg["threads"])
    device, main_process = processes.device, processes.main
    out_dir = Path(cfg["out_dir"])
    if main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
    processes.seed(cfg["seed"])

    # -------------------------------------------------------------------------------- model and data
    Objective = objective_class(cfg["objective"])
    sp_config = superpixel_config(cfg["superpixels"])
    train_images = concat_lists([list_images(spec, cfg["data_root"]) for spec in cfg["train_data"]])
    class_names = imagenet_class_names() if cfg["class_names"] == "imagenet" else train_images.classes
    model_cfg = dict(cfg["model_overrides"])
    if Objective.classifies:
        model_cfg["num_classes"] = len(class_names)
    if cfg["model"].startswith("vit_baseline:"):  # the paper's ViT baseline, sized like the named CAST variant
        model = PatchViT(variant_config(cfg["model"].split(":", 1)[1], **model_cfg))
    else:
        model = build_cast(cfg["model"], init=cfg["init"], **model_cfg)
    img_size = model.config.stem.img_size
    in_config = input_config(cfg["input"], img_size)
    views = augmentation(cfg["augment"], img_size, in_config, cfg["crop_scale"], cfg["color_jitter"],
                         cfg["auto_augment"], cfg["re_prob"])
    dataset = SuperpixelImages(train_images, views, sp_config, in_config, cfg["seed"], cfg["preload"])
    sampler = EpochBatches(len(dataset), cfg["batch_size"], cfg["seed"], processes.rank, processes.world)
    # A private generator: creating loader iterators must not consume the global RNG (resume equality).
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg["num_workers"],
                        generator=torch.Generator(), pin_memory=processes.cuda)
    steps_per_epoch = sampler.batches_per_epoch
    total_steps = max(1, round(cfg["epochs"] * steps_per_epoch))  # fractional epochs allowed

    # -------------------------------------------------------------------------------- objective and optimiser
    objective = Objective.from_config(model, Run(cfg, dataset, processes, out_dir)).to(device)
    if cfg["sync_bn"]:
        objective = processes.global_batchnorm(objective)
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
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg["amp"]) if processes.cuda else None
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
        if len(state["rng"]) == processes.world:
            set_rng_state(state["rng"][processes.rank])
        elif main_process:
            print(f"resuming with {processes.world} processes instead of {len(state['rng'])}: dropout streams are re-seeded")
        if main_process:
            print(f"resumed from {last_path} at step {step}")
    elif cfg["resume"] and main_process:
        print(f"resume requested but {last_path} does not exist: starting from scratch")
    net = processes.wrap(objective, objective.find_unused_parameters)

    def checkpoint() -> None:
        rngs = processes.rng_states()
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
        print(f"{Objective.name}: {len(dataset)} images, {steps_per_epoch} steps/epoch x {cfg['epochs']} epochs "
              f"= {total_steps} steps at batch {cfg['batch_size']} on {processes.world} x {device}; peak lr {peak_lr:.3g}")
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
            scheduled = objective.schedule(step, total_steps)
            batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                loss, logs = net(batch)
            # One all-reduce for the loss and its parts: logging, and every rank agrees on the NaN check.
            values = processes.mean(torch.stack([loss.detach().float(), *[v.float() for v in logs.values()]])).tolist()
            if not math.isfinite(values[0]):
                bar.close()
                message = (f"loss is {values[0]} at step {step}; stopping. The last good training state is "
                           f"{last_path} (written every {cfg['ckpt_every']} steps); nothing was written after it.")
                processes.close()
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
                          **dict(zip(logs, values[1:], strict=True)),
                          "images_per_s": (step - tick_step) * cfg["batch_size"] / (now - tick),
                          "elapsed_s": elapsed_before + now - started, **scheduled}
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
        teacher = objective.teacher_network()
        metrics = evaluate_held_out(model, cfg["eval_data"], cfg["data_root"], sp_config, serve_config, class_names,
                                    train_images.classes if Objective.uses_labels else None, teacher, device,
                                    cfg["num_workers"])
        provenance = {
            "recipe": cfg["name"],
            "objective": Objective.name,
            "config": cfg,
            "command": " ".join(["torchrun", f"--nproc_per_node={processes.world}"] if processes.world > 1 else ["python"])
            + " -m training.train " + " ".join(argv),
            "data": {spec: len(list_images(spec, cfg["data_root"])) for spec in cfg["train_data"]},
            "teacher": TEACHER_NAME if teacher is not None else None,
            "steps": total_steps,
            "images_seen": total_steps * cfg["batch_size"],
            "wall_time_s": round(wall, 1),
            "hardware": hardware(processes),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        if isinstance(model, PatchViT):
            save_vit(model, out_dir / "model", provenance={**provenance, "metrics": metrics})
        else:
            config = CheckpointConfig(model=model.config, superpixels=sp_config, class_names=list(class_names),
                                      input=serve_config, name=cfg["name"], provenance=provenance, metrics=metrics)
            save_checkpoint(model, config, out_dir / "model")
        log_file.write(json.dumps({"step": step, "final": True, "metrics": metrics, "wall_time_s": wall}) + "\n")
        print(json.dumps(metrics, indent=1))
        print(f"model written to {out_dir / 'model'} after {wall / 60:.1f} min")
    if log_file is not None:
        log_file.close()
    if writer is not None:
        writer.close()
    processes.barrier()
    processes.close()
    return model


if __name__ == "__main__":
    main()
