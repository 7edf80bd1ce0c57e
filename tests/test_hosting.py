"""A Space in one command, checked without network: large files go through LFS, the pins agree, and the
deploy's file set (tools/deploy_space.py) leaves development files behind yet runs the app on its own."""
from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tools.deploy_space import LEFT_OUT, SPACE_FILES, export, space_files

REPO = Path(__file__).resolve().parent.parent
HUB_LFS_LIMIT = 10 * 1024 * 1024  # the Hub refuses larger files that are not stored through LFS/Xet
DEV_FOLDERS = ("tests/", "benchmarks/", "docs/", "training/", "tools/", ".ci/", ".venv/", "runs/")
APP_NEEDS = ("app.py", "README.md", "requirements.txt", ".gitattributes", "hierseg/__init__.py",
             "hierseg/data/imagenet_hierarchy.json", "explorer/__init__.py", "explorer/static/app.css",
             "checkpoints/default/config.json", "checkpoints/default/model.safetensors",
             "checkpoints/default/labeller.safetensors")


def front_matter() -> dict:
    text = (REPO / "README.md").read_text()
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match, "README.md has no front matter: the Space would not know its SDK"
    return yaml.safe_load(match.group(1))


def pins(lines: list[str]) -> dict[str, str]:
    """{canonical name: exact version} of the ``==`` requirements among ``lines``."""
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            exact = [s.version for s in req.specifier if s.operator == "=="]
            if exact:
                out[canonicalize_name(req.name)] = exact[0]
    return out


def test_every_tracked_file_over_10_mb_goes_through_lfs() -> None:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    large = [p for p in tracked.decode().split("\0") if p and (REPO / p).is_file()
             and (REPO / p).stat().st_size > HUB_LFS_LIMIT]
    assert "checkpoints/default/model.safetensors" in large  # the file that made git push fail
    attrs = subprocess.run(["git", "check-attr", "filter", "--", *large], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout
    not_lfs = [line for line in attrs.splitlines() if not line.endswith(": filter: lfs")]
    assert not not_lfs, f"over 10 MB without an LFS line in .gitattributes: {not_lfs}"


def test_front_matter_pins_the_gradio_that_requirements_install() -> None:
    meta = front_matter()
    assert meta["sdk"] == "gradio"
    assert (REPO / meta["app_file"]).is_file()
    required = pins((REPO / "requirements.txt").read_text().splitlines())
    extra = pins(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["app"])
    assert str(meta["sdk_version"]) == required.get("gradio") == extra.get("gradio"), (
        f"sdk_version {meta['sdk_version']}, requirements.txt {required.get('gradio')}, pyproject app extra "
        f"{extra.get('gradio')}: a Space installs the first, a local install the others")


def test_deploy_leaves_development_files_behind(tmp_path: Path) -> None:
    paths = [f.path for f in space_files()]
    assert not [p for p in paths if p.startswith(DEV_FOLDERS) or "__pycache__" in p], paths
    assert set(APP_NEEDS) <= set(paths), set(APP_NEEDS) - set(paths)
    # The filter, not this checkout's contents, keeps decoys out: a local venv, a test, a benchmark, bytecode.
    decoys = [".venv/lib/python3.11/site-packages/hierseg/x.py", "tests/test_x.py", "benchmarks/b.py",
              "docs/hosting.md", "training/train.py", "hierseg/__pycache__/x.cpython-311.pyc", "explorer/x.pyi",
              "runs/a/model.safetensors", "checkpoints/mine/model.safetensors"]
    for path in [*APP_NEEDS, *decoys]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"x")
    assert sorted(f.path for f in space_files(tmp_path)) == sorted(APP_NEEDS)
    assert SPACE_FILES and LEFT_OUT


CHILD = r"""
import importlib.abc, json, os, sys

class OnlyRequirements(importlib.abc.MetaPathFinder):
    # Installed packages outside requirements.txt cannot be imported: a Space would not have them.
    blocked = set(json.loads(os.environ["BLOCKED_MODULES"]))
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.blocked:
            raise ModuleNotFoundError(f"{name} is not installed by requirements.txt", name=name)

sys.meta_path.insert(0, OnlyRequirements())
imported = set()
sys.addaudithook(lambda event, args: imported.add(args[0]) if event == "open" and isinstance(args[0], str) else None)
import numpy as np
from skimage import data
import app
app.build_demo()
from explorer.pool import SegmenterPool, run_model
h = run_model(SegmenterPool(), "default", data.astronaut()[::2, ::2])
from hierseg.checkpoints import resolve_checkpoint
print(json.dumps({"checkpoint": str(resolve_checkpoint("default")), "modules": {n: getattr(m, "__file__", None) for n, m in list(sys.modules.items())},
                  "opened": sorted(imported), "classes": h.n_classes, "levels": h.n_levels}))
"""


def _requirements_closure() -> set[str]:
    """Canonical names of requirements.txt's distributions and everything they require (extras aside)."""
    todo = [Requirement(line.split("#")[0]).name for line in (REPO / "requirements.txt").read_text().splitlines()
            if line.split("#")[0].strip()]
    seen: set[str] = set()
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        for spec in importlib.metadata.requires(name) or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


@pytest.mark.slow
def test_the_deployed_files_alone_run_the_app_on_requirements_txt(tmp_path: Path) -> None:
    space = tmp_path / "space"
    export(space_files(), space)
    closure = _requirements_closure()
    local = {p.stem for p in space.iterdir()}
    # Top-level modules no distribution in requirements.txt's closure provides (training extras, test tools,
    # this checkout's editable install: its `training` package among them).
    blocked = sorted(m for m, dists in importlib.metadata.packages_distributions().items()
                     if m not in local and not {canonicalize_name(d) for d in dists} & closure)
    assert "training" in blocked and "scipy" not in blocked  # scikit-image requires scipy
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HIERSEG_CHECKPOINT", "HIERSEG_CHECKPOINTS")}
    env.update(HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", OMP_NUM_THREADS="1",
               BLOCKED_MODULES=json.dumps(blocked))
    run = subprocess.run([sys.executable, "-c", CHILD], cwd=space, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["classes"] == 1000 and result["levels"] >= 2
    prefixes = {sys.prefix, sys.base_prefix, str(space)}
    # Nothing came from outside the Space's files and the interpreter's packages (an editable install's
    # finder would serve a module the deploy forgot from the checkout it points at).
    strays = {n: f for n, f in result["modules"].items() if f and os.path.isabs(f) and not f.startswith(tuple(prefixes))}
    assert not strays, strays
    from_repo = {n: f for n, f in result["modules"].items() if f and f.startswith(str(space))}
    assert not [n for n in from_repo if n.split(".")[0] in ("training", "tests", "benchmarks", "tools")]
    # The default came from the Space's files (safetensors maps its weights without Python's open()).
    assert Path(result["checkpoint"]).resolve() == (space / "checkpoints/default").resolve()
    opened = {Path(p).resolve() for p in result["opened"]}
    assert (space / "checkpoints/default/config.json").resolve() in opened
    assert not {n for n in result["modules"] if n.split(".")[0] in blocked}
