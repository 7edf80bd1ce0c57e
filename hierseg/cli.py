"""Command line: ``hierseg segment | convert | info``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import HiersegError


def _segment(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .hierarchy import ROOT
    from .naming import node_label
    from .refine import NO_TIME_BUDGET
    from .render import render_level
    from .segmenter import load_segmenter

    segmenter = load_segmenter(args.checkpoint, device=args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures: list[tuple[str, str]] = []
    used: set[str] = set()
    for path in tqdm(args.images, desc="segmenting", unit="img", disable=args.quiet):
        stem = Path(path).stem
        name, n = stem, 1
        while name in used:  # two inputs with one file name must not overwrite each other
            n += 1
            name = f"{stem}-{n}"
        used.add(name)
        try:
            if args.refine is None:
                h = segmenter(path)
            else:  # the steps asked for, however long they take
                h = segmenter.refine(path, steps=args.refine, seed=args.seed, config=NO_TIME_BUDGET)
        except HiersegError as exc:
            failures.append((path, str(exc)))
            continue
        folder = h.save_pngs(out / name)
        # The photo's label by the rule the app and the COCO export use ("dog 85%", "uncertain (...)").
        tqdm.write(f"{path}: {node_label(h, ROOT).text}")
        if args.preview:
            from PIL import Image

            from .imageio import load_image

            rgb = load_image(path)
            for level in range(h.n_levels):
                Image.fromarray(render_level(rgb, h.label_maps[level])).save(folder / f"preview_{level}.jpg", quality=90)
    done = len(args.images) - len(failures)
    print(f"segmented {done} of {len(args.images)} images into {out}")
    for path, why in failures:
        print(f"  failed: {path}: {why}", file=sys.stderr)
    return 1 if failures else 0


def _convert(args: argparse.Namespace) -> int:
    from .checkpoints import convert_file

    clusters = tuple(int(k) for k in args.clusters.split(","))
    folder, report = convert_file(args.input, args.output, num_heads=args.num_heads, clusters=clusters, use_ema=args.ema)
    print(report)
    print(f"wrote {folder}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from .checkpoints import read_config, resolve_checkpoint

    folder = resolve_checkpoint(args.checkpoint)
    config = read_config(folder)
    weights = folder / "model.safetensors"
    summary = {
        "folder": str(folder),
        "size_mb": round(weights.stat().st_size / 2**20, 2) if weights.exists() else None,
        **{k: v for k, v in config.to_dict().items() if k != "class_names"},
        "num_classes": len(config.class_names),
        "class_names_head": config.class_names[:10],
    }
    print(json.dumps(summary, indent=1))
    return 0


def _steps(text: str) -> int:
    steps = int(text)
    if steps < 0:
        raise argparse.ArgumentTypeError(f"refine steps must be >= 0, got {steps}")
    return steps


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hierseg", description="Part-whole image hierarchies with CAST.")
    sub = parser.add_subparsers(dest="command", required=True)

    seg = sub.add_parser("segment", help="segment images: a JSON tree and one PNG label map per level each")
    seg.add_argument("images", nargs="+", help="image files")
    seg.add_argument("--out", required=True, help="output folder (one subfolder per image)")
    seg.add_argument("--checkpoint", default=None, help="checkpoint name or path (default: the shipped one)")
    seg.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    seg.add_argument("--preview", action="store_true", help="also write a coloured JPEG per level")
    seg.add_argument("--refine", type=_steps, default=None, metavar="STEPS",
                     help="adapt the model to each photo for STEPS steps first (Segmenter.refine; about 1 s a step on CPU)")
    seg.add_argument("--seed", type=int, default=0, help="seed of the refinement's random views")
    seg.add_argument("--quiet", action="store_true", help="no progress bar")
    seg.set_defaults(run=_segment)

    conv = sub.add_parser("convert", help="convert an official CAST .pth/.pth.tar into a hierseg checkpoint folder")
    conv.add_argument("input", help="official checkpoint file")
    conv.add_argument("output", help="output folder")
    conv.add_argument("--num-heads", type=int, default=12, help="attention heads (12 for every official variant)")
    conv.add_argument("--clusters", default="64,32,16,8", help="clusters per level, comma separated")
    conv.add_argument("--ema", action="store_true", help="DeiT files: take model_ema instead of model")
    conv.set_defaults(run=_convert)

    info = sub.add_parser("info", help="describe a checkpoint")
    info.add_argument("checkpoint", nargs="?", default=None)
    info.set_defaults(run=_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except HiersegError as exc:
        print(f"hierseg: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
