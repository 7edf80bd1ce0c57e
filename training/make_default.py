"""The shipped default in one command: every step of its recipe from one config file, resumable.

    python -m training.make_default OUT --data ../shared/data [--config training/make_default.json]
        [--only STEP] [--budget tiny]

Steps, in order, each reading the previous one's output (``OUT.work/`` holds everything but the result):

1. ``train``: ``python -m training.train`` on the config's ``train.recipe``, one invocation per entry of
   ``train.schedule`` (a schedule change mid-run, as the shipped run had, is a ``stop_step`` chunk
   followed by a resumed one); ``OUT.work/train/last.pt`` makes an interrupted run resume.
2. ``merge``: the region-merging metric's weights (colour, stem taps, tokens; no trained parameter),
   each candidate scored by ``training.tune_merge`` on BSDS500 *train*; the best covering is written
   into the checkpoint (``OUT.work/merge``). Before, someone copied the printed winner by hand.
3. ``labeller``: the labeller's head and settings (``training.labeller_head``) -> ``OUT.work/labeller``.
4. ``grouping``: ``training.train_grouping``: the grouping head and the calibrated cut heights; writes
   the finished checkpoint to ``OUT`` (its target cache and ``head.pt`` go to ``OUT.work``).
5. ``evaluate``: ``training.evaluate`` on ``OUT`` (with the ``merge_tokens`` = 0 ablation at matched
   counts when ``tokens_off``) -> ``OUT.work/evaluate``.

``OUT`` is a checkpoint folder like ``checkpoints/default`` (config.json, model.safetensors,
labeller.safetensors) plus ``make_default.json``: the config used and, per step, whether it is done and
the seconds it took. A rerun skips the steps marked done; an interrupted step resumes (training from
``last.pt``, the grouping head from its target cache and ``head.pt``); ``--only STEP`` runs one step again
from scratch (the steps before it must be done; the ones after it are marked not done and run afresh on
the next run). ``--budget NAME`` applies the config's
``budgets.NAME`` overrides (``tiny``: a minutes-long run of the same recipe on a mini BSDS500 layout).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from hierseg import load_segmenter
from hierseg.checkpoints import CONFIG, save_checkpoint
from hierseg.labeller import labeller_config
from hierseg.model import CAST

CONFIG_PATH = Path(__file__).resolve().parent / "make_default.json"  # beside its command: configs/ holds training recipes
RECORD = "make_default.json"
SECTIONS = ("train", "merge", "labeller", "grouping", "evaluate")


class RecipeError(ValueError):
    """The command line or the config file asks for something that does not exist."""


def merged(base: Any, changes: Any) -> Any:
    """``base`` with ``changes`` laid over it: dicts merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(changes, dict):
        out = dict(base)
        for key, value in changes.items():
            if key not in base:
                raise RecipeError(f"budget override {key!r} is not a key of the config (known: {', '.join(base)})")
            out[key] = merged(base[key], value)
        return out
    return copy.deepcopy(changes)


def load_recipe(path: Path, budget: str | None) -> dict[str, Any]:
    """The config file's sections, with ``budgets[budget]`` laid over them."""
    raw = json.loads(Path(path).read_text())
    missing = [s for s in SECTIONS if s not in raw]
    if missing:
        raise RecipeError(f"{path} lacks the section(s) {', '.join(missing)} (it needs {', '.join(SECTIONS)})")
    budgets = raw.pop("budgets", {})
    if budget is not None:
        if budget not in budgets:
            raise RecipeError(f"{path} has no budget {budget!r}; known: {', '.join(budgets) or 'none'}")
        raw = merged(raw, budgets[budget])
    return raw


@dataclasses.dataclass
class Run:
    """Where one make_default run reads and writes."""

    out: Path
    data: Path
    recipe: dict[str, Any]
    command: str

    @property
    def work(self) -> Path:
        return self.out.with_name(self.out.name + ".work")

    def step_dir(self, step: str) -> Path:
        return self.work / step


# ------------------------------------------------------------------------------------------- the steps
def train_step(run: Run) -> dict[str, Any]:
    """``training.train`` on the recipe, chunk by chunk; resumes from ``last.pt``."""
    from training import train

    section = run.recipe["train"]
    folder = run.step_dir("train")
    folder.mkdir(parents=True, exist_ok=True)
    recipe_file = folder / "recipe.json"  # the train section as the recipe file train.py reads
    recipe_file.write_text(json.dumps(section["recipe"], indent=1) + "\n")
    last = folder / "last.pt"
    for chunk in section["schedule"]:
        stop = chunk.get("stop_step")
        if stop is not None and last.exists() and torch.load(last, weights_only=False)["step"] >= stop:
            continue  # this chunk finished in an earlier invocation
        overrides = [f"{key}={json.dumps(value)}" for key, value in chunk.items()]
        train.main([str(recipe_file), f"data_root={run.data}", f"out_dir={folder}", *overrides, "--resume"])
    model = folder / "model"
    if not (model / CONFIG).is_file():
        raise RuntimeError(f"training ended without writing {model}: the last schedule entry must run to the end")
    provenance = json.loads((model / CONFIG).read_text())["provenance"]
    return {"output": str(model), "steps": provenance["steps"], "training_wall_s": provenance["wall_time_s"]}


def merge_step(run: Run) -> dict[str, Any]:
    """Score every candidate merge metric on BSDS500 train; write the best covering into the checkpoint."""
    from training.tune_merge import score, with_settings

    section = run.recipe["merge"]
    source = run.step_dir("train") / "model"
    base = load_segmenter(source, device="cpu")
    size, n_segments = base.config.input.size, base.config.superpixels.n_segments
    table = []
    for candidate in section["candidates"]:
        # with_settings rewrites the shared model's pool weights: the checkpoint is reloaded below.
        tuned = with_settings(base, size, n_segments, candidate["colour"], tuple(candidate["taps"]), candidate["tokens"])
        covering, boundary_f = score(tuned, run.data, section["images"])
        table.append({**candidate, "covering": round(covering, 4), "boundary_f": round(boundary_f, 4)})
        print(f"merge {candidate}: covering {covering:.3f}, boundary F {boundary_f:.3f}", flush=True)
    best = max(table, key=lambda row: row["covering"])
    fresh = load_segmenter(source, device="cpu")
    model = CAST(fresh.config.model.replace(merge_colour=best["colour"], merge_taps=list(best["taps"]),
                                            merge_tokens=best["tokens"]))
    model.load_state_dict(fresh.model.state_dict())
    provenance = {
        **fresh.config.provenance,
        "make_default": {"command": run.command, "config": run.recipe},
        "schedule": run.recipe["train"]["schedule"],
        "merge_weights_chosen_after_training": {
            "by": f"training.make_default merge step: training.tune_merge.score on {section['images']} BSDS500 "
                  "train photos, best covering", "merge_colour": best["colour"], "merge_taps": list(best["taps"]),
            "merge_tokens": best["tokens"], "table": table},
    }
    save_checkpoint(model, dataclasses.replace(fresh.config, provenance=provenance), run.step_dir("merge"))
    return {"output": str(run.step_dir("merge")), "chosen": best, "table": table}


def labeller_step(run: Run) -> dict[str, Any]:
    """The merge step's checkpoint with the labeller's head and settings beside it."""
    from training.labeller_head import write_labeller

    folder = run.step_dir("labeller")
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(run.step_dir("merge"), partial)
    write_labeller(partial, labeller_config(run.recipe["labeller"]))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return {"output": str(folder)}


def grouping_step(run: Run) -> dict[str, Any]:
    """``training.train_grouping`` from the labeller step's checkpoint into OUT (resumable: OUT.work)."""
    from training import train_grouping

    overrides = [f"{key}={json.dumps(value)}" for key, value in run.recipe["grouping"].items()]
    train_grouping.main([str(run.step_dir("labeller")), str(run.out), "--data", str(run.data), *overrides])
    return {"output": str(run.out), "thresholds": load_segmenter(run.out, device="cpu").config.tree.thresholds}


def evaluate_step(run: Run) -> dict[str, Any]:
    """``training.evaluate`` on OUT; with ``tokens_off`` also OUT with ``merge_tokens`` = 0 at matched counts."""
    from training import evaluate

    section = run.recipe["evaluate"]
    folder = run.step_dir("evaluate")
    argv = [str(run.out), "--data", str(run.data), "--out", str(folder), "--only", ",".join(section["only"]),
            "--baselines", ",".join(section["baselines"]), "--device", "cpu"]
    if section.get("limit") is not None:
        argv += ["--limit", str(section["limit"])]
    if section.get("imagenet_photos"):
        argv += ["--imagenet-photos", str(run.data / section["imagenet_photos"])]
    if section.get("tokens_off"):
        ablation = run.work / "tokens_off"
        shutil.rmtree(ablation, ignore_errors=True)
        shutil.copytree(run.out, ablation, ignore=shutil.ignore_patterns(RECORD))
        raw = json.loads((ablation / CONFIG).read_text())
        raw["model"]["pooling"]["merge_tokens"] = 0.0
        (ablation / CONFIG).write_text(json.dumps(raw, indent=1) + "\n")
        argv += ["--matched", f"tokens_off={ablation}", "--slic-cache", str(run.work / "slic_cache")]
    evaluate.main(argv)
    return {"output": str(folder), "command": "python -m training.evaluate " + " ".join(argv)}


STEPS: dict[str, Callable[[Run], dict[str, Any]]] = {
    "train": train_step, "merge": merge_step, "labeller": labeller_step, "grouping": grouping_step,
    "evaluate": evaluate_step,
}
# What a step leaves in OUT.work to resume an interrupted attempt: kept for that, deleted before the step is
# run again (its inputs may have changed, and a finished last.pt or head.pt would only be read back).
RESUME_STATE: dict[str, tuple[str, ...]] = {"train": ("train",), "grouping": ("targets", "head.pt")}


# ------------------------------------------------------------------------------------------- the run
def write_record(run: Run, record: dict[str, Any]) -> None:
    """The record lives in OUT.work (OUT is replaced whole when the grouping step writes it) and is
    copied into OUT once OUT is a checkpoint."""
    text = json.dumps(record, indent=1) + "\n"
    for path in [run.work / RECORD] + ([run.out / RECORD] if (run.out / CONFIG).is_file() else []):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


def make_default(out: Path, data: Path, config: Path = CONFIG_PATH, only: str | None = None,
                 budget: str | None = None, command: str = "") -> dict[str, Any]:
    """Run the recipe's unfinished steps (or just ``only``); returns the record written to OUT."""
    if only is not None and only not in STEPS:
        raise RecipeError(f"unknown step {only!r}; the steps are {', '.join(STEPS)}")
    if not Path(data).is_dir():
        raise RecipeError(f"data folder {data} does not exist")
    recipe = load_recipe(config, budget)
    run = Run(Path(out), Path(data), recipe, command)
    run.work.mkdir(parents=True, exist_ok=True)
    record_file = run.work / RECORD
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    if record and record.get("config") != recipe:
        raise SystemExit(f"{record_file} was made from another config (or budget); use a new OUT, or delete "
                         f"{run.work} and {run.out} to start again")
    record.update({"config": recipe, "budget": budget, "data": str(data)})
    steps = record.setdefault("steps", {})
    names = list(STEPS)
    if only is not None:
        position = names.index(only)
        unfinished = [name for name in names[:position] if not steps.get(name, {}).get("done")]
        if unfinished:
            raise SystemExit(f"--only {only} needs the earlier steps done first: {', '.join(unfinished)}")
        names = [only]
    for name in names:
        if steps.get(name, {}).get("done") and only is None:
            print(f"[make_default] {name}: done earlier ({steps[name]['seconds']:.1f} s), skipped", flush=True)
            continue
        if name in steps:  # finished once: start afresh (an interrupted first attempt has no entry and resumes)
            for state in RESUME_STATE.get(name, ()):
                path = run.work / state
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            del steps[name]
        for later in list(STEPS)[list(STEPS).index(name) + 1:]:  # their inputs are about to change
            if later in steps:
                steps[later]["done"] = False
        write_record(run, record)
        print(f"[make_default] {name} ...", flush=True)
        started = time.time()
        result = STEPS[name](run)
        steps[name] = {"done": True, "seconds": round(time.time() - started, 1), **result}
        write_record(run, record)
        print(f"[make_default] {name}: {steps[name]['seconds']:.1f} s", flush=True)
    write_record(run, record)
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.make_default", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the checkpoint folder to write (its work folder: OUT.work)")
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder (e.g. ../shared/data)")
    parser.add_argument("--config", type=Path, default=CONFIG_PATH, help="the recipe, one section per step")
    parser.add_argument("--only", choices=list(STEPS), default=None, help="run this one step again")
    parser.add_argument("--budget", default=None, help="apply the config's budgets.BUDGET overrides (e.g. tiny)")
    args = parser.parse_args(argv)
    command = "python -m training.make_default " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        record = make_default(args.out, args.data, args.config, args.only, args.budget, command)
    except RecipeError as error:
        parser.error(str(error))
    seconds = {name: step["seconds"] for name, step in record["steps"].items()}
    print(f"wrote {args.out}; seconds per step: {json.dumps(seconds)}")


if __name__ == "__main__":
    main()
