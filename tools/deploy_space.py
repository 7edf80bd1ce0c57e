"""Publish the explorer as a Hugging Face Space in one command (docs/hosting.md).

    python -m tools.deploy_space --dry-run                       # the files that go up and their size; no network
    python -m tools.deploy_space USER/SPACE                      # create the Space if needed, upload, print its URL
    python -m tools.deploy_space USER/SPACE --hardware zero-a10g # also ask for that hardware (ZeroGPU here)
    python -m tools.deploy_space --export DIR                    # copy the same files into DIR (for `git push`)

Run it from the repository root (``python path/to/tools/deploy_space.py`` works from anywhere); it
reads the repository this file lives in. The token is huggingface_hub's own
(``hf auth login`` or ``HF_TOKEN``). A Space needs ``app.py``, the README (its front matter configures
the Space), ``requirements.txt``, the ``hierseg`` and ``explorer`` packages, the shipped default checkpoint
and the example photos; tests, benchmarks, docs, training code and any local virtual environment stay
behind. ``SPACE_FILES`` and ``LEFT_OUT`` are huggingface_hub patterns (``fnmatch``, where ``*`` also
crosses ``/``): ``upload_folder`` and ``hf upload --include/--exclude`` read them alike, and the dry
run lists what they select with huggingface_hub's own filter.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub.utils import filter_repo_objects

REPO = Path(__file__).resolve().parent.parent

# What the Space runs: app.py imports explorer and hierseg; hierseg reads its data/ files and the
# default checkpoint; the app lists examples/. .gitattributes sends the safetensors through LFS/Xet.
SPACE_FILES = [
    "README.md", "app.py", "requirements.txt", ".gitattributes",
    "hierseg/*.py", "hierseg/data/*",
    "explorer/*.py", "explorer/static/*",
    "checkpoints/default/config.json", "checkpoints/default/*.safetensors",
    "examples/*",
]
# Never uploaded, even where a pattern above would reach them (bytecode, generated stubs, local folders).
LEFT_OUT = [
    "*__pycache__*", "*.pyc", "*.pyi", ".venv/*", "*/.venv/*", ".git/*", ".gradio/*", "runs/*",
    "tests/*", "benchmarks/*", "docs/*", "training/*", "tools/*", ".ci/*",
]


@dataclass(frozen=True)
class SpaceFile:
    path: str  # relative to the repository, "/"-separated: the path in the Space
    size: int  # bytes


def space_files(root: Path = REPO) -> list[SpaceFile]:
    """The files a Space gets from ``root``, in upload order (``upload_folder``'s walk and filter)."""
    root = Path(root)
    found = sorted(p.relative_to(root).as_posix() for p in root.glob("**/*") if p.is_file())
    chosen = filter_repo_objects(found, allow_patterns=SPACE_FILES, ignore_patterns=LEFT_OUT)
    return [SpaceFile(path, (root / path).stat().st_size) for path in chosen]


def file_table(files: list[SpaceFile]) -> str:
    """A markdown table of ``files`` with a total row (what ``--dry-run`` prints)."""
    lines = ["| file | size |", "|---|---|"]
    lines += [f"| {f.path} | {_size(f.size)} |" for f in files]
    lines.append(f"| **{len(files)} files** | **{_size(sum(f.size for f in files))}** |")
    return "\n".join(lines)


def export(files: list[SpaceFile], target: Path, root: Path = REPO) -> None:
    """Copy ``files`` into ``target`` (an empty or missing folder), keeping their paths."""
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise ValueError(f"{target} is not empty: export into a new folder")
    for f in files:
        (target / f.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / f.path, target / f.path)


def deploy(repo_id: str, private: bool = False, hardware: str | None = None, root: Path = REPO) -> str:
    """Create the Space ``repo_id`` (kept if it exists), upload ``space_files(root)``, return its URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    # delete_patterns: files a previous upload left that this one no longer sends (a renamed module).
    api.upload_folder(repo_id=repo_id, repo_type="space", folder_path=str(root), allow_patterns=SPACE_FILES,
                      ignore_patterns=LEFT_OUT, delete_patterns=["*.py", "explorer/static/*", "examples/*"],
                      commit_message="Deploy hierseg explorer (tools/deploy_space.py)")
    if hardware:
        api.request_space_hardware(repo_id, hardware)
    return f"https://huggingface.co/spaces/{repo_id}"


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repo_id", nargs="?", help="USER/SPACE (or ORG/SPACE) on the Hugging Face Hub")
    parser.add_argument("--dry-run", action="store_true", help="print the files and their total size, upload nothing")
    parser.add_argument("--export", type=Path, metavar="DIR", help="copy the files into DIR instead of uploading")
    parser.add_argument("--private", action="store_true", help="create the Space private")
    parser.add_argument("--hardware", help="request this hardware, e.g. cpu-basic, cpu-upgrade, zero-a10g, t4-small")
    args = parser.parse_args(argv)
    files = space_files()
    if args.dry_run:
        print(file_table(files))
        return
    if args.export:
        if args.export.exists() and any(args.export.iterdir()):
            parser.error(f"{args.export} is not empty: export into a new folder")
        export(files, args.export)
        print(f"copied {len(files)} files into {args.export}")
        return
    if not args.repo_id or args.repo_id.count("/") != 1:
        parser.error("give the Space as USER/SPACE (or use --dry-run / --export DIR)")
    print(deploy(args.repo_id, args.private, args.hardware))


if __name__ == "__main__":
    sys.exit(main())
