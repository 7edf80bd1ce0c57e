"""BSDS500 region metrics: segmentation covering, probabilistic Rand index (PRI), variation of information (VI).

Each level of a hierarchy (a list of label maps for one image) is scored against the set of human
segmentations of the image, and a data set is aggregated into ODS (one level for the whole data set)
and OIS (best level per image) exactly like the official MATLAB benchmark (``evaluation_reg_image`` /
``collect_eval_reg``). Against the benchmark's own outputs in ``bsds500/bench_data`` (segmentation lists
and UCMs) every number agrees to the printed 6 digits, except the per-image precision column of
``eval_cover_img.txt``, off by up to 3e-6.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

LabelMap = NDArray[np.integer]
FloatArray = NDArray[np.float64]


def contingency_table(a: LabelMap, b: LabelMap) -> NDArray[np.int64]:
    """Pixel counts of every (label of ``a``, label of ``b``) pair; rows/columns are the labels present."""
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in shape: {a.shape} vs {b.shape}")
    if a.dtype.kind in "iu" and b.dtype.kind in "iu" and a.size and min(a.min(), b.min()) >= 0 \
            and (int(a.max()) + 1) * (int(b.max()) + 1) <= 1 << 24:
        # Label maps with small non-negative ids (every map here): count the ids directly and drop the
        # ids with no pixel, which keeps the labels present in sorted order without sorting the pixels.
        na, nb = int(a.max()) + 1, int(b.max()) + 1
        table = np.bincount(a.ravel().astype(np.int64) * nb + b.ravel(), minlength=na * nb).reshape(na, nb)
        return table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    na, nb = int(ia.max()) + 1, int(ib.max()) + 1
    return np.bincount(ia.ravel() * nb + ib.ravel(), minlength=na * nb).reshape(na, nb)


def _jaccard(table: NDArray[np.int64]) -> FloatArray:
    """Region-to-region intersection over union from a contingency table."""
    rows = table.sum(axis=1, keepdims=True)
    cols = table.sum(axis=0, keepdims=True)
    return table / (rows + cols - table)


def rand_index(table: NDArray[np.int64]) -> float:
    """Rand index (fraction of pixel pairs on which two labellings agree) from their contingency table."""
    n = table.astype(np.float64)
    total = n.sum()
    disagree = 0.5 * (n.sum(axis=1) ** 2).sum() + 0.5 * (n.sum(axis=0) ** 2).sum() - (n**2).sum()
    return float(1.0 - disagree / (total * (total - 1) / 2.0))


def _entropy(p: FloatArray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def variation_of_information(table: NDArray[np.int64]) -> float:
    """Variation of information ``H(A|B) + H(B|A)`` in bits, as the benchmark."""
    joint = table / table.sum()
    return 2.0 * _entropy(joint.ravel()) - _entropy(joint.sum(axis=1)) - _entropy(joint.sum(axis=0))


def segmentation_covering(seg: LabelMap, humans: Sequence[LabelMap]) -> float:
    """Covering of the human segmentations by ``seg``.

    Every human region, pooled over all humans, takes the best IoU of any region of ``seg``; the
    result is the area-weighted mean. Every label value (0 included) is a region.
    """
    ev = evaluate_regions([seg], humans)
    return float(ev.cover_count[0] / ev.cover_total[0])


def probabilistic_rand_index(seg: LabelMap, humans: Sequence[LabelMap]) -> float:
    """PRI: the Rand index of ``seg`` with each human segmentation, averaged over humans."""
    return float(np.mean([rand_index(contingency_table(seg, h)) for h in humans]))


def mean_variation_of_information(seg: LabelMap, humans: Sequence[LabelMap]) -> float:
    """VI of ``seg`` with each human segmentation (bits), averaged over humans."""
    return float(np.mean([variation_of_information(contingency_table(seg, h)) for h in humans]))


@dataclass(frozen=True)
class ImageRegionEval:
    """Region counts of one image, one entry per level (the benchmark's ``_ev2``/``_ev3``/``_ev4`` files).

    ``cover_count`` sums, over all human regions, region area x best IoU with a region of the level;
    ``cover_total`` is the total human area. ``precision_count``/``precision_total`` are the same with
    the roles swapped (level regions matched to any human region). ``best_cover_count`` lets every human
    region pick its best level independently.
    """

    cover_count: FloatArray
    cover_total: FloatArray
    precision_count: FloatArray
    precision_total: FloatArray
    pri: FloatArray
    voi: FloatArray
    best_cover_count: float


def evaluate_regions(levels: Sequence[LabelMap], humans: Sequence[LabelMap]) -> ImageRegionEval:
    """Covering, PRI and VI of every level against the human segmentations of one image."""
    if not humans:
        raise ValueError("need at least one human segmentation")
    for seg in levels:
        if seg.shape != humans[0].shape:
            raise ValueError(f"label maps differ in shape: {seg.shape} vs {humans[0].shape}")
    return evaluate_region_tables([[contingency_table(h, seg) for h in humans] for seg in levels],
                                  [float(seg.size) for seg in levels])


def evaluate_region_tables(level_tables: Sequence[Sequence[NDArray[np.int64]]], n_pixels: Sequence[float]) -> ImageRegionEval:
    """:func:`evaluate_regions` from contingency tables: ``level_tables[t][h]`` is human ``h`` (rows: every
    label of that human) against level ``t`` (columns: the level's segments that have pixels).

    The one place the counts are made, so a caller that builds tables faster (a merge tree cut at many
    heights, :mod:`.ultrametric`) scores exactly as the benchmark-checked path does.
    """
    if not level_tables or not level_tables[0]:
        raise ValueError("need at least one level and one human segmentation")
    n_levels = len(level_tables)
    cover_count, precision_count = np.zeros(n_levels), np.zeros(n_levels)
    pri, voi = np.zeros(n_levels), np.zeros(n_levels)
    best_match: FloatArray | None = None
    # Every human label has pixels, so a table's row sums are that human's region areas at any level.
    human_areas = np.concatenate([tab.sum(axis=1) for tab in level_tables[0]])
    for t, tables in enumerate(level_tables):
        iou = np.concatenate([_jaccard(tab) for tab in tables], axis=0)  # human regions x level regions
        match_gt = iou.max(axis=1)
        cover_count[t] = (human_areas * match_gt).sum()
        precision_count[t] = (tables[0].sum(axis=0) * iou.max(axis=0)).sum()
        pri[t] = np.mean([rand_index(tab) for tab in tables])
        voi[t] = np.mean([variation_of_information(tab) for tab in tables])
        best_match = match_gt if best_match is None else np.maximum(best_match, match_gt)
    total = float(human_areas.sum())
    return ImageRegionEval(
        cover_count=cover_count,
        cover_total=np.full(n_levels, total),
        precision_count=precision_count,
        precision_total=np.asarray(n_pixels, dtype=float),
        pri=pri,
        voi=voi,
        best_cover_count=float((human_areas * best_match).sum()) if best_match is not None else 0.0,
    )


@dataclass(frozen=True)
class RegionSummary:
    """Data-set region scores; level indices are 0-based, ``thresholds`` label the levels in reports.

    ODS fixes one level for the whole data set: covering and PRI take the level maximising the data-set
    score, VI the level minimising it (first such level on ties). Covering at a level pools the counts of
    all images (area weighted); PRI/VI at a level are means over images. OIS lets each image pick its
    own level: for covering the per-image best counts are pooled, for PRI/VI the per-image best scores
    are averaged. ``cover_best`` lets every human region pick its own level.
    """

    thresholds: FloatArray
    covering: FloatArray
    pri: FloatArray
    voi: FloatArray
    cover_ods_level: int
    cover_ods: float
    cover_ois: float
    cover_best: float
    pri_ods_level: int
    pri_ods: float
    pri_ois: float
    voi_ods_level: int
    voi_ods: float
    voi_ois: float
    image_cover_level: NDArray[np.int64]
    image_cover: FloatArray
    image_cover_precision: FloatArray


def summarize_regions(evals: Sequence[ImageRegionEval], thresholds: Sequence[float] | None = None) -> RegionSummary:
    """Aggregate per-image region counts like ``collect_eval_reg``.

    ``thresholds`` default to ``1..L``, the labels the benchmark gives a list of segmentations.
    """
    cnt = np.stack([e.cover_count for e in evals])  # images x levels
    tot = np.stack([e.cover_total for e in evals])
    pcnt = np.stack([e.precision_count for e in evals])
    ptot = np.stack([e.precision_total for e in evals])
    pri = np.stack([e.pri for e in evals])
    voi = np.stack([e.voi for e in evals])
    image_recall = cnt / tot
    image_level = image_recall.argmax(axis=1)
    rows = np.arange(len(evals))
    covering = cnt.sum(axis=0) / tot.sum(axis=0)
    pri_mean, voi_mean = pri.mean(axis=0), voi.mean(axis=0)
    cover_level, pri_level, voi_level = int(covering.argmax()), int(pri_mean.argmax()), int(voi_mean.argmin())
    n_levels = cnt.shape[1]
    return RegionSummary(
        thresholds=np.arange(1.0, n_levels + 1) if thresholds is None else np.asarray(thresholds, dtype=float),
        covering=covering,
        pri=pri_mean,
        voi=voi_mean,
        cover_ods_level=cover_level,
        cover_ods=float(covering[cover_level]),
        cover_ois=float(cnt[rows, image_level].sum() / tot[:, 0].sum()),
        cover_best=float(sum(e.best_cover_count for e in evals) / tot[:, 0].sum()),
        pri_ods_level=pri_level,
        pri_ods=float(pri_mean[pri_level]),
        pri_ois=float(pri.max(axis=1).mean()),
        voi_ods_level=voi_level,
        voi_ods=float(voi_mean[voi_level]),
        voi_ois=float(voi.min(axis=1).mean()),
        image_cover_level=image_level,
        image_cover=image_recall[rows, image_level],
        image_cover_precision=(pcnt / ptot)[rows, image_level],
    )


def bsds_region_report(summary: RegionSummary) -> dict[str, str]:
    """The texts of ``eval_cover.txt``, ``eval_cover_img.txt``, ``eval_cover_th.txt``, ``eval_RI_VOI.txt``
    and ``eval_RI_VOI_thr.txt`` in the benchmark's layout (MATLAB ``%10g`` columns)."""
    t = summary.thresholds
    img = "".join(
        f"{i + 1:10d} {t[lvl]:10g} {c:10g} {p:10g}\n"
        for i, (lvl, c, p) in enumerate(zip(summary.image_cover_level, summary.image_cover, summary.image_cover_precision, strict=True))
    )
    return {
        "eval_cover.txt": f"{t[summary.cover_ods_level]:10g} {summary.cover_ods:10g} {summary.cover_ois:10g} "
        f"{summary.cover_best:10g}\n",
        "eval_cover_img.txt": img,
        "eval_cover_th.txt": "".join(f"{a:10g} {b:10g}\n" for a, b in zip(t, summary.covering, strict=True)),
        "eval_RI_VOI.txt": f"{t[summary.pri_ods_level]:10g} {summary.pri_ods:10g} {summary.pri_ois:10g} "
        f"{t[summary.voi_ods_level]:10g} {summary.voi_ods:10g} {summary.voi_ois:10g}\n",
        "eval_RI_VOI_thr.txt": "".join(f"{a:10g} {b:10g} {c:10g}\n" for a, b, c in zip(t, summary.pri, summary.voi, strict=True)),
    }

