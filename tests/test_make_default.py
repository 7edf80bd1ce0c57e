"""The shipped default's recipe in one command (training.make_default), run end to end on a tiny budget."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image, ImageDraw
from skimage import data

from hierseg import load_segmenter
from hierseg.labeller import labeller_config
from training import make_default as md

REPO = Path(__file__).resolve().parents[1]


def mini_bsds(root: Path, rng: np.random.Generator) -> Path:
    """A BSDS500 layout in miniature: 8 train and 2 val photos (a shape on a background, 96 x 64 px), each
    with one human segmentation (.mat) that is the shape's mask."""
    for split, count in (("train", 8), ("val", 2)):
        images, truth = root / "bsds500" / "images" / split, root / "bsds500" / "groundTruth" / split
        images.mkdir(parents=True)
        truth.mkdir(parents=True)
        for i in range(count):
            photo = Image.new("RGB", (96, 64), tuple(int(v) for v in rng.integers(0, 256, 3)))
            mask = Image.new("L", (96, 64), 1)
            x0, y0 = int(rng.integers(5, 40)), int(rng.integers(5, 25))
            box = [x0, y0, x0 + int(rng.integers(20, 45)), y0 + int(rng.integers(15, 30))]
            ImageDraw.Draw(photo).ellipse(box, fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
            ImageDraw.Draw(mask).ellipse(box, fill=2)
            photo.save(images / f"{split}{i}.jpg", quality=95)
            segmentation = np.asarray(mask, dtype=np.uint16)
            boundaries = np.zeros(segmentation.shape, bool)
            boundaries[:, 1:] |= segmentation[:, 1:] != segmentation[:, :-1]
            boundaries[1:, :] |= segmentation[1:, :] != segmentation[:-1, :]
            annotations = np.empty((1, 1), dtype=object)
            annotations[0, 0] = {"Segmentation": segmentation, "Boundaries": boundaries}
            scipy.io.savemat(truth / f"{split}{i}.mat", {"groundTruth": annotations})
    return root


def nested_keys(config: dict, sections=("model", "input", "superpixels", "labeller", "tree")) -> dict[str, list[str]]:
    keys = {"": sorted(config)}
    for section in sections:
        keys[section] = sorted(config[section])
    keys["model.stem"], keys["model.pooling"] = sorted(config["model"]["stem"]), sorted(config["model"]["pooling"])
    return keys


@pytest.mark.slow
def test_tiny_budget_writes_a_default_like_checkpoint_and_a_rerun_skips_every_step(tmp_path, capsys, monkeypatch):
    from training import train

    root = mini_bsds(tmp_path / "data", np.random.default_rng(0))
    out = tmp_path / "default"
    # Interrupted after the schedule's first chunk (step 1 of 2): the rerun resumes from last.pt at step 1.
    real_main, calls = train.main, []

    def interrupted_after_one_chunk(argv):
        calls.append(argv)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real_main(argv)

    monkeypatch.setattr(train, "main", interrupted_after_one_chunk)
    with pytest.raises(KeyboardInterrupt):
        md.main([str(out), "--data", str(root), "--budget", "tiny"])
    monkeypatch.setattr(train, "main", real_main)
    md.main([str(out), "--data", str(root), "--budget", "tiny"])
    log = [json.loads(line) for line in (tmp_path / "default.work" / "train" / "log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log if "loss" in entry] == [1, 2]  # step 1 trained once, not again

    # The same files and config keys as the shipped default, plus the run's record.
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "labeller.safetensors", "make_default.json",
                                                     "model.safetensors"]
    config = json.loads((out / "config.json").read_text())
    shipped = json.loads((REPO / "checkpoints" / "default" / "config.json").read_text())
    # The shipped labeller entry still holds view_size, a setting the teacher-head kind no longer has.
    shipped["labeller"] = labeller_config(shipped["labeller"]).to_dict()
    assert nested_keys(config) == nested_keys(shipped)
    assert config["name"] == "default" and config["labeller"] == shipped["labeller"]
    # Every step's output made it in: the chosen merge weights, the grouping head, the calibrated heights.
    chosen = config["provenance"]["merge_weights_chosen_after_training"]
    table = chosen["table"]
    assert len(table) == 2 and max(row["covering"] for row in table) == next(
        row["covering"] for row in table if row["taps"] == chosen["merge_taps"])
    assert config["model"]["pooling"]["merge_taps"] == chosen["merge_taps"]
    assert config["model"]["pooling"]["grouping_dim"] == 8 and config["model"]["pooling"]["merge_tokens"] == 3.0
    assert len(config["tree"]["thresholds"]) == 2
    assert config["provenance"]["steps"] == 2 and config["provenance"]["grouping"]["config"]["steps"] == 10

    record = json.loads((out / "make_default.json").read_text())
    assert list(record["steps"]) == list(md.STEPS)
    assert all(step["done"] and step["seconds"] > 0 for step in record["steps"].values())
    results = json.loads((tmp_path / "default.work" / "evaluate" / "results.json").read_text())
    assert {"CAST", "tokens_off"} <= set(results["methods"])

    segmenter = load_segmenter(out, device="cpu")
    h = segmenter(data.astronaut())
    assert h.merge_tree is not None and h.n_levels == 3 and h.n_nodes(0) >= 2

    # A second run finds every step done: nothing is recomputed, the checkpoint is untouched.
    weights = (out / "model.safetensors").stat().st_mtime_ns
    capsys.readouterr()
    md.main([str(out), "--data", str(root), "--budget", "tiny"])
    printed = capsys.readouterr().out
    assert all(f"{name}: done earlier" in printed for name in md.STEPS)
    assert (out / "model.safetensors").stat().st_mtime_ns == weights

    # --only reruns one step and marks the later ones not done; another budget on the same OUT is refused.
    target = tmp_path / "default.work" / "targets" / "000000.npz"
    target_written = target.stat().st_mtime_ns
    md.main([str(out), "--data", str(root), "--budget", "tiny", "--only", "labeller"])
    steps = json.loads((tmp_path / "default.work" / "make_default.json").read_text())["steps"]
    assert steps["labeller"]["done"] and not steps["grouping"]["done"] and not steps["evaluate"]["done"]
    capsys.readouterr()
    md.main([str(out), "--data", str(root), "--budget", "tiny"])
    printed = capsys.readouterr().out
    assert all(f"{name}: done earlier" in printed for name in ("train", "merge", "labeller"))
    assert "grouping: done earlier" not in printed and "evaluate: done earlier" not in printed
    assert (out / "model.safetensors").stat().st_mtime_ns != weights
    assert target.stat().st_mtime_ns != target_written  # the grouping targets were made again, not reused
    with pytest.raises(SystemExit, match="another config"):
        md.main([str(out), "--data", str(root)])


def test_an_interrupted_training_resumes_from_its_last_state(tmp_path, monkeypatch):
    """The train step skips a schedule chunk last.pt has passed and resumes the next one (--resume)."""
    from training import train

    calls = []
    monkeypatch.setattr(train, "main", lambda argv: calls.append(argv))
    folder = tmp_path / "default.work" / "train"
    folder.mkdir(parents=True)
    torch.save({"step": 200}, folder / "last.pt")
    run = md.Run(tmp_path / "default", tmp_path, md.load_recipe(md.CONFIG_PATH, None), "")
    with pytest.raises(RuntimeError, match="without writing"):
        md.train_step(run)
    assert len(calls) == 1 and "epochs=1.6" in calls[0] and calls[0][-1] == "--resume"
    torch.save({"step": 199}, folder / "last.pt")
    calls.clear()
    with pytest.raises(RuntimeError):
        md.train_step(run)
    assert [c for argv in calls for c in argv if c.startswith("epochs=")] == ["epochs=2.2", "epochs=1.6"]


def test_the_default_config_is_the_shipped_recipe():
    """Every value the shipped checkpoint records about its recipe is the config file's."""
    recipe = md.load_recipe(md.CONFIG_PATH, None)
    shipped = json.loads((REPO / "checkpoints" / "default" / "config.json").read_text())
    trained = shipped["provenance"]["config"]
    # "init" joined the recipe after the default was trained (trunc_normal: bit-identical to the init it had).
    assert set(recipe["train"]["recipe"]) - set(trained) == {"init"}
    for key, value in recipe["train"]["recipe"].items():
        if key not in ("name", "init"):
            assert trained[key] == value, key
    assert recipe["train"]["schedule"][-1]["epochs"] == trained["epochs"]
    # The head was trained before the tree read borders; the tree's cost (border and size factor) was set
    # and its cut heights recalibrated after it (issue 23), with the named qualities.
    from training.train_grouping import TREE_COST as cost

    assert shipped["provenance"]["grouping"]["config"] == {
        k: v for k, v in recipe["grouping"].items() if k not in (*cost, "qualities")} | {"size_power": 0.5, "small_area": 0.02}
    recalibrated = shipped["provenance"]["tree_recalibrated"]["config"]
    assert all(recalibrated[k] == recipe["grouping"][k] == shipped["tree"][k] for k in cost)
    assert recalibrated["qualities"] == recipe["grouping"]["qualities"]
    # Each shipped quality is the recipe's (a bare number: the view size) with the cut heights calibrated for it.
    overrides = {name: {"input": {"size": spec}} if isinstance(spec, int) else spec
                 for name, spec in recipe["grouping"]["qualities"].items()}
    without_heights = {name: {key: rest for key, values in q.items()
                              if (rest := {k: v for k, v in values.items() if k != "thresholds"})}
                       for name, q in shipped["qualities"].items()}
    assert without_heights == overrides
    assert all(len(q["tree"]["thresholds"]) == len(shipped["tree"]["thresholds"]) for q in shipped["qualities"].values())
    assert labeller_config(shipped["labeller"]) == labeller_config(recipe["labeller"])
    from training.evaluate import parse_only

    assert parse_only(",".join(recipe["evaluate"]["only"])) == ["bsds", "pascal", "horse", "recognition"]
    chosen = shipped["provenance"]["merge_weights_chosen_after_training"]
    assert {"colour": chosen["merge_colour"], "taps": chosen["merge_taps"], "tokens": chosen["merge_tokens"]} in \
        recipe["merge"]["candidates"]


def test_bad_input_gets_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        md.main([str(tmp_path / "out"), "--data", str(tmp_path), "--budget", "huge"])
    assert "no budget 'huge'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        md.main([str(tmp_path / "out"), "--data", str(tmp_path / "absent")])
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        md.main([str(tmp_path / "out"), "--data", str(tmp_path), "--only", "tune"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"train": {}, "merge": {}}))
    with pytest.raises(SystemExit):
        md.main([str(tmp_path / "out"), "--data", str(tmp_path), "--config", str(bad)])
    assert "lacks the section(s) labeller, grouping, evaluate" in capsys.readouterr().err
    with pytest.raises(md.RecipeError, match="not a key"):
        md.merged({"a": {"b": 1}}, {"a": {"c": 2}})


def test_help_names_every_step(capsys):
    with pytest.raises(SystemExit) as exit_:
        md.main(["--help"])
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    assert "--budget" in printed and all(f"``{name}``" in printed for name in md.STEPS)


def test_the_grouping_step_resumes_from_head_pt(tmp_path):
    """An interrupted grouping run continues from OUT.work/head.pt (its optimiser state must load back)."""
    from types import SimpleNamespace

    from training.train_grouping import GroupingConfig, train_head, weighted_gram

    rng = np.random.default_rng(0)
    files = []
    for i in range(3):
        tokens, areas = rng.normal(size=(10, 6)).astype(np.float16), rng.uniform(1, 2, 10).astype(np.float32)
        gram = weighted_gram(torch.from_numpy(rng.normal(size=(10, 4))), torch.from_numpy(areas).double())
        np.savez(tmp_path / f"{i}.npz", tokens=tokens, areas=areas, gram=gram.numpy().astype(np.float32))
        files.append(tmp_path / f"{i}.npz")
    torch.manual_seed(0)
    model = SimpleNamespace(grouping_head=torch.nn.Sequential(torch.nn.Linear(6, 4)))
    train_head(model, files, GroupingConfig(steps=3, batch=2), tmp_path)
    after_three = [p.detach().clone() for p in model.grouping_head.parameters()]
    resumed = SimpleNamespace(grouping_head=torch.nn.Sequential(torch.nn.Linear(6, 4)))
    train_head(resumed, files, GroupingConfig(steps=5, batch=2), tmp_path)
    state = torch.load(tmp_path / "head.pt", weights_only=True)
    assert state["step"] == 5
    # Started from the 3-step head (not its own random init) and moved by 2 warm-up steps (lr <= 1e-4).
    for a, b in zip(after_three, resumed.grouping_head.parameters()):
        assert not torch.equal(a, b) and (a - b).abs().max() < 1e-3
