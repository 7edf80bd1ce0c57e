"""Command line: ``hierseg segment | segment-dataset | dataset-status | browse | export-dataset | convert | info``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import HiersegError, MissingDependencyError


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
    from .checkpoints import read_config, resolve_reference

    folder, quality = resolve_reference(args.checkpoint)
    config = read_config(folder).with_quality(quality)
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


def _segment_dataset(args: argparse.Namespace) -> int:
    from .dataset import RunSettings, open_results, segment_dataset

    settings = RunSettings(args.src, args.out, args.checkpoint, args.device, args.batch_size, args.shard_size,
                           args.workers, args.evidence, args.segments, args.stale_after, not args.quiet, args.threads)
    records = segment_dataset(settings)
    status = open_results(args.out).status()
    photos = sum(r["photos"] for r in records)
    print(f"this process wrote {len(records)} shards ({photos} photos); {args.out}: {_status_line(status)}")
    return 0


def _status_line(status: dict) -> str:
    return (f"{status['shards_done']}/{status['shards']} shards done, {status['ok']} photos ok, "
            f"{status['error']} errors, {status['pending']} pending, {status['bytes_per_photo']} bytes/photo")


def _dataset_status(args: argparse.Namespace) -> int:
    from .dataset import open_results

    status = open_results(args.out).status()
    print(json.dumps(status, indent=1) if args.json else _status_line(status)
          + (f"; in progress: {', '.join(status['working_on'])}" if status["working_on"] else ""))
    return 0


# Apps built on the library (the explorer's gallery) register themselves under this entry-point group, so
# the library reaches them without importing the packages above it.
APPS = "hierseg.apps"


def _browse(args: argparse.Namespace) -> int:
    from importlib.metadata import entry_points

    found = [point for point in entry_points(group=APPS) if point.name == "browse"]
    missing = "hierseg browse needs the explorer app{}: pip install 'hierseg[app]'"
    if not found:
        raise MissingDependencyError(missing.format(f" (no '{APPS}' entry point 'browse' is installed)"))
    try:
        launch_gallery = found[0].load()
    except ImportError as error:
        raise MissingDependencyError(missing.format(f" ({error})")) from None
    launch_gallery(args.out, server_name=args.host, server_port=args.port, share=args.share)
    return 0


def _export_dataset(args: argparse.Namespace) -> int:
    from .dataset import open_results
    from .dataset.exporters import export_coco_dataset, export_hf_parquet

    results = open_results(args.out)
    keys = None if args.limit is None else list(results.index[results.index["status"] == "ok"]["key"][: args.limit])
    if args.format == "coco":
        path = export_coco_dataset(results, args.dest, keys=keys)
    else:
        path = export_hf_parquet(results, args.dest, keys=keys)
    print(f"wrote {path}")
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


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
    seg.add_argument("--checkpoint", default=None, help="checkpoint name or path, NAME@QUALITY for a named quality, e.g. default@fine "
                     "(default: the shipped one)")
    seg.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    seg.add_argument("--preview", action="store_true", help="also write a coloured JPEG per level")
    seg.add_argument("--refine", type=_steps, default=None, metavar="STEPS",
                     help="adapt the model to each photo for STEPS steps first (Segmenter.refine; about 1 s a step on CPU)")
    seg.add_argument("--seed", type=int, default=0, help="seed of the refinement's random views")
    seg.add_argument("--quiet", action="store_true", help="no progress bar")
    seg.set_defaults(run=_segment)

    ds = sub.add_parser("segment-dataset", help="segment a folder or list of photos into sharded, resumable results")
    ds.add_argument("src", help="a folder (searched recursively) or a text file of image paths")
    ds.add_argument("out", help="output folder (run it again to resume; see docs/dataset.md)")
    ds.add_argument("--checkpoint", default=None, help="checkpoint name or path, NAME@QUALITY for a named quality, e.g. default@fine "
                     "(default: the shipped one)")
    ds.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ... (under torchrun: cuda picks LOCAL_RANK's GPU)")
    ds.add_argument("--batch-size", type=_positive, default=None, help="photos per network batch (default: 1 on CPU, 64 on GPU)")
    ds.add_argument("--shard-size", type=_positive, default=1000, help="photos per shard (fixed by the first run)")
    ds.add_argument("--workers", type=int, default=1, help="DataLoader processes decoding photos and computing superpixels")
    ds.add_argument("--threads", type=_positive, default=1,
                    help="torch threads per process (the same count gives the same bytes whatever the launch)")
    ds.add_argument("--evidence", default="top5", help="class evidence kept per node: topK (e.g. top5) or full")
    ds.add_argument("--segments", action="store_true", help="also write a parquet of every node (level, parent, area, box, classes)")
    ds.add_argument("--stale-after", type=float, default=600.0,
                    help="seconds after which another host's untouched shard claim counts as abandoned")
    ds.add_argument("--quiet", action="store_true", help="no progress bar")
    ds.set_defaults(run=_segment_dataset)

    st = sub.add_parser("dataset-status", help="what a segment-dataset run has done")
    st.add_argument("out")
    st.add_argument("--json", action="store_true", help="print the counts as JSON")
    st.set_defaults(run=_dataset_status)

    br = sub.add_parser("browse", help="a gallery of a segment-dataset run's trees (needs the app extra)")
    br.add_argument("out")
    br.add_argument("--host", default="127.0.0.1")
    br.add_argument("--port", type=int, default=None)
    br.add_argument("--share", action="store_true")
    br.set_defaults(run=_browse)

    ex = sub.add_parser("export-dataset", help="export a segment-dataset run to COCO JSON or Hugging Face parquet")
    ex.add_argument("out", help="the run's folder")
    ex.add_argument("dest", help="file to write (.json for coco, .parquet for hf)")
    ex.add_argument("--format", choices=("coco", "hf"), required=True)
    ex.add_argument("--limit", type=_positive, default=None, help="only the first N segmented photos")
    ex.set_defaults(run=_export_dataset)

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
