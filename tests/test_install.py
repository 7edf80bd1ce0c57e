"""A regular install (not editable) carries the shipped default: ``load_segmenter()`` works from anywhere.

The package is built from a copy of its sources and installed with pip into a fresh virtual
environment; the child interpreter then runs in an unrelated folder. Dependencies come from this
interpreter's site-packages through a path entry, whose ``.pth`` files (the editable install's
finder among them) are not run, so the child can only import the copy pip installed, and the
test checks that it did.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# What a build reads: pyproject.toml names the packages, the README and the checkpoints folder.
SOURCES = ("pyproject.toml", "README.md", "hierseg", "training", "explorer", "checkpoints")

CHILD = """
import json, sys
import numpy as np
import hierseg
from hierseg import load_segmenter
from hierseg.checkpoints import resolve_checkpoint
from hierseg.hierarchy import ROOT
from hierseg.naming import node_label

rng = np.random.default_rng(0)
photo = np.kron(rng.integers(0, 255, (6, 8, 3)), np.ones((20, 20, 1))).astype(np.uint8)
h = load_segmenter(device="cpu")(photo)
print(json.dumps({"module": hierseg.__file__, "checkpoint": str(resolve_checkpoint()),
                  "shape": list(h.shape), "levels": h.n_levels, "classes": h.n_classes,
                  "label": node_label(h, ROOT).text}))  # reads the WordNet data file from the install
"""


def _venv_site_packages(venv: Path) -> Path:
    return Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))


@pytest.mark.slow
def test_regular_install_loads_the_default_from_another_folder(tmp_path: Path) -> None:
    assert (REPO / "checkpoints" / "default" / "model.safetensors").is_file(), "the shipped default is not in this checkout"
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(REPO / name, source / name)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
    site = _venv_site_packages(venv)
    deps = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "_test_dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HIERSEG_CHECKPOINT", "HIERSEG_CHECKPOINTS")}
    env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "1")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--no-cache-dir",
         "--ignore-installed", "--quiet", str(source)],
        capture_output=True, text=True, env=env,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    shutil.rmtree(source)  # the installed copy must not lean on the sources it was built from

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run([str(python), "-c", CHILD], cwd=elsewhere, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(result["module"]).is_relative_to(site), f"the child imported {result['module']}, not the install"
    assert Path(result["checkpoint"]) == site / "hierseg" / "shipped_checkpoints" / "default"
    assert result["shape"] == [120, 160] and result["levels"] == 4 and result["classes"] == 1000 and result["label"]
