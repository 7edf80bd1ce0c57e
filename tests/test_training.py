"""Training: objectives learn, data order is reproducible, resume and DDP are exact, NaN stops a run.

Everything runs on the CPU with ``cast_micro`` at 64 px on a small synthetic ImageFolder (three shape
classes, ``shapes_data`` in conftest.py), written once per session.
"""
from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image

from conftest import train_run
from hierseg import load_segmenter
from hierseg.model import build_cast
from hierseg.preprocess import IMAGENET_MEAN, IMAGENET_STD, InputConfig
from hierseg.recognition_losses import segment_logits, smooth_max
from hierseg.superpixels import SEEDS_DEIT
from training import objectives, train
from training.data import EpochBatches, SuperpixelImages, distill_views, eval_view, list_images
from training.objectives import Batch, Distill, MoCo, Supervised, TeacherLogits, moco_momentum
from training.teacher import Teacher


def log_losses(out_dir: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (out_dir / "log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def fixed_batch(shapes_data: Path, n: int = 12, views: int = 1) -> dict[str, torch.Tensor]:
    """``n`` images (4 per class), un-augmented or as ``views`` augmented views, with superpixels."""
    images = list_images("imagefolder:.:train", shapes_data)
    pick = [i for c in range(3) for i in np.flatnonzero(images.labels == c)[: n // 3]]
    make = distill_views(64, (0.5, 1.0), 0.2) if views > 1 else eval_view()
    dataset = SuperpixelImages(images, lambda im: sum((make(im) for _ in range(views)), []),
                               dataclasses.replace(SEEDS_DEIT, n_segments=36), InputConfig(size=64))
    return torch.utils.data.default_collate([dataset[(0, int(i))] for i in pick])


def optimise(objective: torch.nn.Module, batch: Batch, steps: int = 12, lr: float = 1e-3,
             schedule: Callable[[int], object] = lambda step: None) -> list[float]:
    """``steps`` AdamW steps of ``objective`` on one batch; ``schedule(step)`` runs before each."""
    torch.manual_seed(0)
    params = [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    losses = []
    for step in range(steps):
        schedule(step)
        loss, _ = objective(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


# -------------------------------------------------------------------------------------------------
# Objectives


def test_smooth_max_lies_between_mean_and_max() -> None:
    logits = torch.randn(2, 7, 5)
    pooled = smooth_max(logits)
    assert torch.all(pooled <= logits.max(1).values + 1e-6)
    assert torch.all(pooled >= logits.mean(1) - 1e-6)
    same = torch.randn(2, 1, 5).expand(-1, 9, -1)
    torch.testing.assert_close(smooth_max(same), same[:, 0])


def test_supervised_steps_lower_the_loss(shapes_data: Path) -> None:
    torch.manual_seed(0)
    batch = fixed_batch(shapes_data)
    model = build_cast("cast_micro", img_size=64, num_classes=3, pool_dropout=0.0)
    objective = Supervised(model, label_smoothing=0.1, segment_weight=0.5)
    losses = optimise(objective, batch)
    assert losses[-1] < 0.9 * losses[0], losses


def test_distill_steps_lower_the_loss_and_train_every_level(shapes_data: Path) -> None:
    torch.manual_seed(0)
    batch = fixed_batch(shapes_data)
    teacher = Teacher(IMAGENET_MEAN, IMAGENET_STD)
    teacher_logits = teacher(batch["images"][:, 0])
    assert teacher_logits.shape == (12, 1000)
    # A cache of the teacher's logits, rows at the batch's training-set indices.
    cached = torch.zeros(int(batch["index"].max()) + 1, 1000)
    cached[batch["index"]] = teacher_logits
    model = build_cast("cast_micro", img_size=64, num_classes=1000, pool_dropout=0.0, freeze_last_pool=False)
    objective = Distill(model, TeacherLogits(teacher, cached), temperature=1.0, segment_weight=0.5)
    torch.testing.assert_close(objective.teacher_logits(batch), teacher_logits)
    loss, logs = objective(batch)
    loss.backward()
    # The segment-token term reaches the last pooling, which the cls logits never use.
    assert model.pools[-1].fc2[1].weight.grad.abs().sum() > 0
    assert set(logs) == {"loss_image", "loss_segments", "agree_top1"}
    model.zero_grad()
    losses = optimise(objective, batch)
    assert losses[-1] < 0.9 * losses[0], losses


def test_moco_steps_lower_the_loss(shapes_data: Path) -> None:
    torch.manual_seed(0)
    batch = fixed_batch(shapes_data, views=2)
    model = build_cast("cast_micro", img_size=64, proj_dim=32, proj_hidden_dim=64, predictor=True, pool_dropout=0.0)
    objective = MoCo(model, temperature=0.2, base_momentum=0.9)
    assert objective.momentum_model.predictor is None
    losses = optimise(objective, batch, steps=15, schedule=lambda step: objective.schedule(step, 12))
    assert losses[-1] < 0.9 * losses[0], losses


def test_moco_momentum_schedule_and_update() -> None:
    assert moco_momentum(0, 100, 0.99) == pytest.approx(0.99)
    assert moco_momentum(50, 100, 0.99) == pytest.approx(0.995)
    assert moco_momentum(100, 100, 0.99) == pytest.approx(1.0)
    model = build_cast("cast_micro", img_size=64, proj_dim=8, proj_hidden_dim=16, predictor=True)
    moco = MoCo(model)
    with torch.no_grad():
        model.cls_token.fill_(1.0)
        moco.momentum_model.cls_token.fill_(0.0)
    moco.update_momentum(0.75)
    torch.testing.assert_close(moco.momentum_model.cls_token, torch.full_like(model.cls_token, 0.25))
    # The loop sets each step's momentum through the objective's schedule, which also logs it.
    assert moco.schedule(50, 100) == {"momentum": pytest.approx(0.995)} and moco.momentum == pytest.approx(0.995)


# -------------------------------------------------------------------------------------------------
# Data


def test_batch_order_depends_only_on_seed_and_epoch() -> None:
    one = EpochBatches(50, 8, seed=3)
    ranks = [EpochBatches(50, 8, seed=3, rank=r, world=2) for r in range(2)]
    assert len(one) == 6
    for epoch in (0, 1):
        one.set_position(epoch)
        for r in ranks:
            r.set_position(epoch)
        merged = [a + b for a, b in zip(*ranks, strict=True)]
        assert merged == list(one)
    one.set_position(0)
    first = list(one)
    one.set_position(1)
    assert [i for _, i in first[0]] != [i for _, i in list(one)[0]]
    one.set_position(0, start_batch=4)
    assert list(one) == first[4:]


def test_augmented_views_are_seeded_per_sample_and_epoch(shapes_data: Path) -> None:
    images = list_images("imagefolder:.:train", shapes_data)
    dataset = SuperpixelImages(images, distill_views(64, (0.35, 1.0), 0.2), SEEDS_DEIT, InputConfig(size=64), seed=1)
    state = torch.get_rng_state()
    a, b, c = dataset[(0, 5)], dataset[(0, 5)], dataset[(1, 5)]
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG stream is untouched
    assert torch.equal(a["images"], b["images"]) and torch.equal(a["superpixels"], b["superpixels"])
    assert not torch.equal(a["images"], c["images"])
    assert a["superpixels"].shape == (1, 64, 64) and a["superpixels"].dtype == torch.int64


def test_training_decodes_photos_as_the_segmenter_does(tmp_path: Path) -> None:
    """Through ``hierseg.imageio``: a photo whose EXIF says "rotate 90 degrees" is trained on upright."""
    (tmp_path / "train" / "a").mkdir(parents=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the stored 40 x 20 pixels are to be shown rotated, 20 wide and 40 high
    Image.new("RGB", (40, 20), (200, 30, 30)).save(tmp_path / "train" / "a" / "0.jpg", exif=exif)
    dataset = SuperpixelImages(list_images("imagefolder:.:train", tmp_path), eval_view(), SEEDS_DEIT,
                               InputConfig(size=64), preload=True)
    assert dataset.rgb(0).shape == (40, 20, 3)


# -------------------------------------------------------------------------------------------------
# Runs


def test_distill_run_writes_a_checkpoint_the_segmenter_loads(shapes_data: Path, tmp_path: Path) -> None:
    train_run("distill_tiny", shapes_data, tmp_path)
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert len(config["class_names"]) == 1000 and config["class_names"][1] == "goldfish"
    assert config["provenance"]["command"].startswith("python -m training.train distill_tiny")
    metrics = config["metrics"]["imagefolder:.:train"]
    segmenter = load_segmenter(tmp_path / "model", device="cpu")
    assert segmenter.config.model.num_classes == 1000
    # The recorded agreement is the saved model's against the teacher on the served views, recomputed here.
    images = list_images("imagefolder:.:train", shapes_data)
    dataset = SuperpixelImages(images, eval_view(), segmenter.config.superpixels, segmenter.config.input)
    batch = torch.utils.data.default_collate([dataset[(0, i)] for i in range(len(images))])
    with torch.no_grad():
        out = segmenter.model(batch["images"][:, 0], batch["superpixels"][:, 0])
        teacher_top1 = Teacher(segmenter.config.input.mean, segmenter.config.input.std)(batch["images"][:, 0]).argmax(-1)
        per_level = [(level.argmax(-1) == teacher_top1).float().mean().item() for level in segment_logits(segmenter.model, out)]
    assert metrics["images"] == len(images)
    assert metrics["agree_top1"] == pytest.approx((out.logits.argmax(-1) == teacher_top1).float().mean().item(), abs=1e-6)
    assert metrics["agree_top1_segments_per_level"] == pytest.approx(per_level, abs=1e-6) and len(per_level) == 4
    assert list(tmp_path.glob("teacher_logits_*.npy"))
    assert not list(tmp_path.glob("*.tmp"))


def test_resume_reproduces_the_uninterrupted_run(shapes_data: Path, tmp_path: Path) -> None:
    """Stop at step 5 of 12 (mid-epoch: 6 steps per epoch), resume, and compare with a straight run.

    The supervised tiny recipe has RandAugment, random erasing, mixup/cutmix, drop path and dropout:
    every random stream has to come back exactly.
    """
    straight = train_run("supervised_tiny", shapes_data, tmp_path / "straight")
    train_run("supervised_tiny", shapes_data, tmp_path / "resumed", "stop_step=5")
    assert not (tmp_path / "resumed" / "model").exists()
    assert torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)["step"] == 5
    resumed = train_run("supervised_tiny", shapes_data, tmp_path / "resumed", "--resume")
    a, b = log_losses(tmp_path / "straight"), log_losses(tmp_path / "resumed")
    # Mixup was on: the targets were soft, so no top-1 against labels was logged.
    assert not any("top1" in json.loads(line) for line in (tmp_path / "straight" / "log.jsonl").read_text().splitlines())
    assert sorted(a) == sorted(b) == list(range(1, 13))
    for step in range(1, 13):
        assert b[step] == pytest.approx(a[step], rel=1e-6, abs=1e-7), step
    for (name, x), (_, y) in zip(straight.state_dict().items(), resumed.state_dict().items(), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-7, msg=name)


def test_nan_loss_stops_the_run_and_keeps_the_last_good_state(shapes_data: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real_forward = objectives.Distill.forward

    def diverging(self, *args):
        loss, logs = real_forward(self, *args)
        calls["n"] += 1
        return (loss * float("nan"), logs) if calls["n"] == 7 else (loss, logs)

    monkeypatch.setattr(objectives.Distill, "forward", diverging)
    with pytest.raises(FloatingPointError, match="loss is nan at step 6"):
        train_run("distill_tiny", shapes_data, tmp_path)
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    assert state["step"] == 4  # ckpt_every 4: the last good state, nothing written after the NaN
    assert all(torch.isfinite(v).all() for v in state["objective"].values() if v.is_floating_point())
    assert not (tmp_path / "model").exists()


def with_gradient(name: str, value: torch.Tensor, moco: bool) -> torch.Tensor:
    """``value`` without the entries whose true gradient is exactly zero.

    AdamW turns rounding noise in a zero gradient into steps of up to lr, so those entries differ
    between any two numerically different but equivalent runs. They are: the attention key biases
    (softmax ignores a shift), the affinity block's output bias (removed by centring over tokens) and,
    under MoCo, the final norm's bias (removed by the projector's BatchNorm after a linear layer).
    """
    if name.endswith("qkv.bias"):
        third = value.shape[0] // 3
        return torch.cat([value[:third], value[2 * third:]])
    if name.endswith("affinity.attn.proj.bias") or (moco and name == "norm.bias"):
        return value[:0]
    return value


def _ddp_worker(rank: int, world: int, port: int, argv: list[str], out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world))
    model = train.main(argv)
    torch.save(model.state_dict(), Path(out) / f"rank{rank}.pt")


@pytest.mark.slow
@pytest.mark.parametrize("config", ["supervised_tiny", "moco_tiny"])
def test_two_process_ddp_matches_one_process(config: str, shapes_data: Path, tmp_path: Path) -> None:
    """2 gloo processes at global batch 8 = 1 process at batch 8: same data, global BatchNorm, mean gradients.

    Dropout, drop path and mixup are off (their random streams are per process by design). 16
    superpixels at 64 px keep every image's token count equal, so padding does not depend on how the
    batch is split; 8 first-level clusters stay below the count of superpixels that reach the grid.
    The trunc-normal initialisation is pinned: from MoCo's Xavier one, four steps already carry the
    two runs' rounding differences past the tolerance (BatchNorm running means differ by 1e-4).
    """
    common = [config, f"data_root={shapes_data}", "init=trunc_normal", "superpixels.n_segments=16",
              "model_overrides.clusters=[8,4,2,1]",
              "model_overrides.pool_dropout=0.0",
              "model_overrides.drop_path_rate=0.0", "mixup_alpha=0.0", "cutmix_alpha=0.0", "epochs=1",
              "stop_step=4", "eval_data=[]"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "two").mkdir()
    mp.spawn(_ddp_worker, args=(2, port, [*common, f"out_dir={tmp_path / 'two'}"], str(tmp_path / "two")), nprocs=2)
    single = train_run(*common[:1], shapes_data, tmp_path / "one", *common[2:]).state_dict()
    rank0 = torch.load(tmp_path / "two" / "rank0.pt")
    rank1 = torch.load(tmp_path / "two" / "rank1.pt")
    for name, value in single.items():
        assert torch.equal(rank0[name], rank1[name]), name
        moco = config.startswith("moco")
        torch.testing.assert_close(with_gradient(name, rank0[name], moco), with_gradient(name, value, moco),
                                   rtol=1e-4, atol=1e-5, msg=name)
    assert log_losses(tmp_path / "two") == pytest.approx(log_losses(tmp_path / "one"), rel=1e-5)


def test_the_command_line_helps_and_names_the_recipes(capsys: pytest.CaptureFixture[str]) -> None:
    from training import train

    with pytest.raises(SystemExit) as done:
        train.main(["--help"])
    assert done.value.code == 0 and "python -m training.train distill_default" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        train.main(["no_such_recipe"])
    assert "no config 'no_such_recipe'" in str(refused.value.code) and "distill_default" in str(refused.value.code)
