"""The data behind hover highlighting: every level's label map, sent to the page once per segmentation.

The page outlines the segment under the pointer (and the region of a hovered tree sector) by
itself, from these maps and the click targets of the view shown (``views.click_targets_json``); a
mouse move never reaches the server. The maps are sampled down to
``HOVER_MAX_SIDE`` (an outline that is off by a pixel or two on a 1024 px photo does not show)
and run-length encoded in raster order, which for label maps is a few percent of the raw size.
"""
from __future__ import annotations

import json

import numpy as np

from hierseg.labels import run_lengths
from hierseg.resize import fit_long_side, resize_nearest

from .display import canvas
from .session import Session

__all__ = ["HOVER_MAX_SIDE", "hover_payload"]

HOVER_MAX_SIDE = 512


def _raster_runs(label_map: np.ndarray) -> list[int]:
    """``[id, count, id, count, ...]`` of ``label_map`` flattened row by row."""
    ids, counts = run_lengths(np.ascontiguousarray(label_map).ravel())
    return np.stack([ids, counts], axis=1).ravel().tolist()


def hover_payload(session: Session, max_side: int = HOVER_MAX_SIDE) -> str:
    """JSON ``{"width", "height", "maps": [[id, count, ...] per level]}`` for the page's hover bridge."""
    shown_maps = canvas(session.chains, session.rgb).label_maps
    small_h, small_w = fit_long_side(*shown_maps[0].shape, max_side)
    maps = [_raster_runs(resize_nearest(label_map, small_h, small_w)) for label_map in shown_maps]
    return json.dumps({"width": small_w, "height": small_h, "maps": maps}, separators=(",", ":"))
