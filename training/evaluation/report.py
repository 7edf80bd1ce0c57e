"""The evaluation's results as a Markdown table and a plot of score against segments per level."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

from training.metrics.scorers import COARSE_LEVELS

from .datasets import EVALUATION_SETS, EvaluationSet
from .recognition import TEACHER_SIZE


def _fmt(value: float | None) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _segments(entry: dict[str, Any], level: int) -> str:
    """Mean segments at a level; for a matched method also the requested count when they differ."""
    got = entry["segments_per_level"][level]
    text = f"{got:.1f}"
    if "requested_segments_per_level" in entry and entry["unmatched_images_per_level"][level]:
        text += f" (asked {entry['requested_segments_per_level'][level]:.1f}, " \
                f"missed on {entry['unmatched_images_per_level'][level]}/{entry['images']} images)"
    return text


def _level_rows(methods: dict[str, Any], key: str, cells: Callable[[dict[str, Any], int], list[str]]) -> list[str]:
    """Rows grouped by level: CAST beside the methods cut to its counts, then methods with their own counts."""
    present = {name: m[key] for name, m in methods.items() if key in m}
    matched = [n for n, e in present.items() if n == "CAST" or "requested_segments_per_level" in e]
    own = [n for n in present if n not in matched]
    rows = []
    width = max((len(present[n]["segments_per_level"]) for n in matched), default=0)
    for level in range(width):
        for name in matched:
            rows.append(f"| {name} | {level} | {_segments(present[name], level)} | " + " | ".join(cells(present[name], level)) + " |")
    for name in own:
        for level in range(len(present[name]["segments_per_level"])):
            rows.append(f"| {name} | {level} | {_segments(present[name], level)} | " + " | ".join(cells(present[name], level)) + " |")
    return rows


def _coarsest(entry: dict[str, Any]) -> str:
    low, median, high = entry.get("coarsest_segments_min_median_max", (None, None, None))
    return "—" if low is None else f"{low} / {median:g} / {high}"


def _bsds_table(results: dict[str, Any], evaluation_set: EvaluationSet) -> list[str]:
    """Region metrics over the levels, the merge tree as an ultrametric, per level, and the tree's shape."""
    methods, key, title = results["methods"], evaluation_set.key, evaluation_set.title
    present = {name: m[key] for name, m in methods.items() if key in m}
    if not present:
        return []
    n = next(iter(present.values()))["images"]
    lines: list[str] = []
    if any("covering_ods" in e for e in present.values()):
        lines += [f"**{title}** ({n} images; ODS / OIS over the levels; covering and PRI higher is better, VI lower)", "",
                  "| method | segments per level | coarsest segments min / median / max | covering | PRI | VI | boundary F |",
                  "|---|---|---|---|---|---|---|"]
        for name, b in present.items():
            counts = ", ".join(f"{c:.0f}" if c >= 10 else f"{c:.1f}" for c in b["segments_per_level"])
            lines.append(f"| {name} | {counts} | {_coarsest(b)} | {b['covering_ods']:.3f} / {b['covering_ois']:.3f} | "
                         f"{b['pri_ods']:.3f} / {b['pri_ois']:.3f} | {b['vi_ods']:.3f} / {b['vi_ois']:.3f} | "
                         + (f"{b['boundary_f_ods']:.3f} / {b['boundary_f_ois']:.3f} |" if "boundary_f_ods" in b else "— |"))
        trees = {name: b["ultrametric"] for name, b in present.items() if "ultrametric" in b}
        if trees:
            heights = next(iter(trees.values()))["heights"]
            lines += ["", f"{title}, the merge tree as an ultrametric: cut at the same {len(heights)} heights on every photo "
                      f"({heights[0]:g} to {heights[-1]:g}, log-spaced); ODS: the best height for the set, OIS: the best per photo "
                      "(as the benchmark scores gPb-owt-ucm).", "",
                      "| method | covering ODS / OIS | PRI ODS / OIS | VI ODS / OIS | covering ODS height (mean segments there) |",
                      "|---|---|---|---|---|"]
            for name, u in trees.items():
                lines.append(f"| {name} | {u['covering_ods']:.3f} / {u['covering_ois']:.3f} | {u['pri_ods']:.3f} / {u['pri_ois']:.3f} | "
                             f"{u['vi_ods']:.3f} / {u['vi_ois']:.3f} | {u['covering_ods_height']:.3g} ({u['covering_ods_segments']:.1f}) |")
        lines += ["", f"{title} per level:", "", "| method | level | segments | covering | PRI | VI | boundary F |",
                  "|---|---|---|---|---|---|---|"]
        lines += _level_rows(methods, key, lambda e, l: [_fmt(e[k][l]) if k in e else "—" for k in
                                                         ("covering_per_level", "pri_per_level", "vi_per_level", "boundary_f_per_level")])
    else:
        lines += [f"**{title}** ({n} images; no ground truth here: segment counts and the tree's shape only)", "",
                  "| method | segments per level | coarsest segments min / median / max | levels that are one segment |",
                  "|---|---|---|---|"]
        for name, b in present.items():
            counts = ", ".join(f"{c:.0f}" if c >= 10 else f"{c:.1f}" for c in b["segments_per_level"])
            lines.append(f"| {name} | {counts} | {_coarsest(b)} | {b.get('single_segment_levels', '—')} |")
    lines += ["", f"Shape of the tree on {title}: coarse segments (levels 0-{COARSE_LEVELS - 1}) that are one "
              "4-connected piece; parent nodes (levels 0..L-2) with exactly one child (nested methods only).", "",
              "| method | one piece, per level | one piece, coarse levels | single-child parents, per level | single-child parents |",
              "|---|---|---|---|---|"]
    for name, b in present.items():
        t = b["tree"]
        per = ", ".join(_fmt(v) for v in t["one_piece_per_level"])
        single = ", ".join(_fmt(v) for v in t.get("single_child_per_level", [])) or "—"
        lines.append(f"| {name} | {per} | {_fmt(t['one_piece_coarse'])} of {t['coarse_segments']} | {single} | "
                     + (f"{_fmt(t['single_child'])} of {t['parent_nodes']}" if "single_child" in t else "—") + " |")
    return lines + [""]


def _objects_section(shares: dict[str, Any]) -> list[str]:
    """Share of photos where one segment covers the object (IoU >= the threshold), per half of the set."""
    if not shares:
        return []
    first = next(iter(shares.values()))
    cover = f", photos where it covers >= {first['min_cover']:.0%}" if first["min_cover"] else ""
    lines = ["", f"Whole objects: share of photos where ONE segment (1) or the union of at most TWO disjoint segments (2) "
             f"covers the object at IoU >= {first['threshold']:g}{cover}; "
             "dev = first half of the set (settings chosen there), held-out = second half (never tuned on). Coarsest: the level "
             "the app shows first; levels: any level above the finest; tree: any node of the merge tree (any level for a "
             "method without one); bound: the best union of the finest level's segments.", "",
             "| method | half | photos | coarsest 1 / 2 | levels 1 / 2 | tree 1 / 2 | bound |", "|---|---|---|---|---|---|---|"]
    for name, share in shares.items():
        for half in ("held_out", "dev", "all"):
            h = share[half]
            pairs = " | ".join(f"{_fmt(h.get(key))} / {_fmt(h.get(key + '_2'))}" for key in ("coarse", "levels", "tree"))
            lines.append(f"| {name} | {half.replace('_', '-')} | {h['photos']} | {pairs} | {_fmt(h['bound'])} |")
    return lines


def _miou_table(results: dict[str, Any], evaluation_set: EvaluationSet) -> list[str]:
    """Majority-label mIoU per level against each ground-truth level, then the tree's shape."""
    methods, key = results["methods"], evaluation_set.key
    if not any(key in m for m in methods.values()):
        return []
    columns = results["gt_columns"][key]
    n = next(m[key]["images"] for m in methods.values() if key in m)
    lines = [f"**{evaluation_set.title}** ({evaluation_set.note}), {n} images", "",
             "| method | level | segments | " + " | ".join(columns) + " |", "|---" * (3 + len(columns)) + "|"]
    lines += _level_rows(methods, key, lambda e, l: [_fmt(v) for v in e["miou_per_level"][l]])
    shaped = {name: m[key] for name, m in methods.items() if key in m and "tree" in m[key]}
    if shaped:
        lines += ["", "| method | coarsest segments min / median / max | one piece, coarse levels | single-child parents |",
                  "|---|---|---|---|"]
        for name, e in shaped.items():
            t = e["tree"]
            lines.append(f"| {name} | {_coarsest(e)} | {_fmt(t['one_piece_coarse'])} of {t['coarse_segments']} | "
                         + (f"{_fmt(t['single_child'])} of {t['parent_nodes']}" if "single_child" in t else "—") + " |")
    lines += _objects_section({name: m[key]["objects"] for name, m in methods.items() if key in m and "objects" in m[key]})
    return lines + [""]


# The report's table layouts, by the name an evaluation set gives in its ``table``.
TABLES: dict[str, Callable[[dict[str, Any], EvaluationSet], list[str]]] = {"bsds": _bsds_table, "miou": _miou_table}


def markdown(results: dict[str, Any]) -> str:
    """The results dict of ``training.evaluate.run`` as Markdown tables, one per data set present."""
    lines = [f"Checkpoint `{results['checkpoint']}`; images per set: {results['limit'] or 'full split'}.", ""]
    for evaluation_set in EVALUATION_SETS.values():
        lines += TABLES[evaluation_set.table](results, evaluation_set)
    recognition = results.get("recognition")
    if recognition:
        lines += ["**Recognition** through the segmenter (`h.prediction`), the teacher (EfficientNet-Lite0, whole image "
                  f"at {TEACHER_SIZE} px) beside it", "",
                  "| set | images | top-1 | teacher top-1 | top-5 | teacher top-5 | top-1 = teacher's | teacher's top-1 in top-5 |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, r in recognition.get("sets", {}).items():
            lines.append(f"| {name} | {r['images']} | {_fmt(r['model_top1'])} | {_fmt(r['teacher_top1'])} | "
                         f"{_fmt(r['model_top5'])} | {_fmt(r['teacher_top5'])} | {_fmt(r['agree_top1'])} | "
                         f"{_fmt(r['teacher_top1_in_model_top5'])} |")
        refined_sets = recognition.get("refined", {}).get("sets", {})
        for name, r in refined_sets.items():
            lines.append(f"| {name}, refined {recognition['refined']['steps']} steps | {r['images']} | {_fmt(r['model_top1'])} | "
                         f"{_fmt(r['teacher_top1'])} | {_fmt(r['model_top5'])} | {_fmt(r['teacher_top5'])} | "
                         f"{_fmt(r['agree_top1'])} | {_fmt(r['teacher_top1_in_model_top5'])} |")
        if refined_sets:
            lines.append("\nSeconds per image, " + "; ".join(
                f"{name}: {recognition['sets'][name]['seconds_per_image']:.2f} before, {r['seconds_per_image']:.2f} refined"
                for name, r in refined_sets.items()) + ".")
        for name, why in recognition.get("skipped", {}).items():
            lines.append(f"\n{name}: not evaluated ({why}).")
        lines.append("")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    """Per-level score against number of segments, one line per method, one panel per data set present."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(s.key, s.plot.metric, s.plot.title, s.plot.column) for s in EVALUATION_SETS.values()
              if s.plot is not None and any(s.key in m for m in results["methods"].values())]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2), squeeze=False)
    for ax, (key, metric, title, column) in zip(axes[0], panels, strict=True):
        for name, m in results["methods"].items():
            if key in m:
                y = [row[column] for row in m[key][metric]] if column is not None else m[key][metric]
                ax.plot(m[key]["segments_per_level"], y, marker="o", label=name)
        ax.set_xscale("log")
        ax.set_xlabel("segments per image (mean)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
