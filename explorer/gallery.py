"""``hierseg browse OUT``: a gallery over a ``segment-dataset`` run, and its stored trees explored with no model run.

The index (``hierseg.dataset.open_results``) gives the filters (the photo's label, the status) and a page of
thumbnails; a click opens the photo's stored tree in an explorer ``Session``: a click on the photo drills into
a segment, Up goes back, the granularity slider re-cuts the stored merge tree (``Hierarchy.recut``). The
handlers are plain functions of a ``Gallery`` (tested without a browser); ``build_gallery`` wires them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from hierseg.dataset import open_results
from hierseg.errors import ImageLoadError
from hierseg.imageio import load_image

from .granularity import STEP, has_granularity, height_at, position_of
from .label_panel import LabelPanel
from .session import Session, click_to_node, drill_to, go_up, new_session, set_granularity
from .views import panels

__all__ = ["ALL", "Gallery", "build_gallery", "launch_gallery"]

ALL = "(all)"
PAGE = 48  # thumbnails per page
THUMB = 192  # thumbnail long side, px
_NO_PHOTO_GREY = 160


class Gallery:
    """The results of one run, filtered and opened (no gradio here)."""

    def __init__(self, out: str | os.PathLike) -> None:
        self.results = open_results(out)
        self.root = self.results.manifest.root

    def labels(self) -> list[str]:
        """The photo labels in the index, most frequent first, after ``ALL``."""
        ok = self.results.index["label"].dropna()
        return [ALL, *ok.value_counts().index.tolist()]

    def statuses(self) -> list[str]:
        return [ALL, *sorted(self.results.index["status"].unique())]

    def rows(self, label: str = ALL, status: str = ALL, path_contains: str = "") -> pd.DataFrame:
        """The index rows passing the filters, manifest order."""
        index = self.results.index
        keep = np.ones(len(index), bool)
        if label != ALL:
            keep &= (index["label"] == label).to_numpy()
        if status != ALL:
            keep &= (index["status"] == status).to_numpy()
        if path_contains:
            keep &= index["path"].str.contains(path_contains, regex=False).to_numpy()
        return index[keep]

    def page(self, rows: pd.DataFrame, page: int) -> list[tuple[np.ndarray, str]]:
        """(thumbnail, caption) of a page of segmented photos, for ``gr.Gallery``. Thumbnails are decoded
        here, so the server never has to be allowed to serve the photos' folders."""
        ok = rows[rows["status"] == "ok"]
        chosen = ok.iloc[page * PAGE:(page + 1) * PAGE]
        return [(self.thumbnail(key), f"{label} · {Path(path).name}")
                for key, path, label in zip(chosen["key"], chosen["path"], chosen["label"])]

    def thumbnail(self, key: str) -> np.ndarray:
        """The photo at most ``THUMB`` px on its long side; its coarsest segments on grey when it moved."""
        path = self.results.path(key)
        try:
            return load_image(self.root / path, max_side=THUMB)
        except ImageLoadError:
            return self.open(key).rgb[::4, ::4]

    def open(self, key: str) -> Session:
        """An explorer session on the photo's stored tree (the photo itself when it is still at its path)."""
        tree = self.results.hierarchy(key)
        path = self.results.path(key)
        try:
            rgb = load_image(self.root / path)
        except ImageLoadError:
            rgb = None
        if rgb is None or rgb.shape[:2] != tree.shape:  # photo moved or changed: draw the segments on grey
            rgb = np.full((*tree.shape, 3), _NO_PHOTO_GREY, np.uint8)
        return new_session(tree, rgb, name=Path(path).name, key=key)


def click(session: Session, x: float, y: float) -> Session:
    """A click on the shown photo at display pixel ``(x, y)``: drill into the segment there."""
    return drill_to(session, click_to_node(session, x, y))


def granularity(session: Session, position: float) -> Session:
    """The slider at ``position`` (0 coarse .. 1 fine): the stored merge tree re-cut there."""
    return set_granularity(session, height_at(session.source, position))


def shown(session: Session) -> tuple[np.ndarray, dict[str, Any], str, str, dict[str, Any]]:
    """What the page shows of a session: the coloured photo, the selection's classes (``LabelPanel``), the
    breadcrumb and parts table (HTML), and the granularity slider's update."""
    view = panels(session)
    movable = has_granularity(session.source)
    position = position_of(session.source, session.height) if movable else 0
    return view.overlay, view.evidence, view.breadcrumb, view.table, gr.update(value=position, interactive=movable)


def build_gallery(gallery: Gallery) -> Any:
    """The browse app (a ``gr.Blocks``) over a run's ``Gallery``."""
    out = gallery.results.layout.out
    status = gallery.results.status()
    with gr.Blocks(title="hierseg browse") as demo:
        gr.Markdown(f"# hierseg browse: {out}\n{status['ok']} photos segmented, {status['error']} errors, "
                    f"{status['pending']} pending. Pick a photo; click a segment to see its parts.")
        session = gr.State(None)
        shown_keys = gr.State([])
        with gr.Row():
            label = gr.Dropdown(gallery.labels(), value=ALL, label="photo label")
            state = gr.Dropdown(gallery.statuses(), value=ALL, label="status")
            contains = gr.Textbox(label="path contains")
            page = gr.Number(value=0, precision=0, minimum=0, label="page")
        thumbs = gr.Gallery(columns=8, height=320, allow_preview=False, label="photos")
        table = gr.Dataframe(interactive=False, max_height=200, label="index rows (errors show their reason)")
        with gr.Row():
            with gr.Column(scale=3):
                photo = gr.Image(interactive=False, label="click a segment")
                slider = gr.Slider(0, 1, value=0, step=STEP, label="granularity (coarse to fine)")
                up = gr.Button("Up")
            with gr.Column(scale=2):
                evidence = LabelPanel(label="selected segment")
                breadcrumb = gr.HTML()
                parts = gr.HTML()

        def refresh(label_value: str, status_value: str, text: str, page_value: float) -> tuple:
            rows = gallery.rows(label_value, status_value, text)
            items = gallery.page(rows, int(page_value or 0))
            ok = rows[rows["status"] == "ok"]["key"].tolist()[int(page_value or 0) * PAGE:][:len(items)]
            return items, rows[["path", "status", "label", "error"]].head(500), ok

        def show(current: Session | None) -> tuple:
            return shown(current) if current is not None else (None, None, "", "", gr.update())

        def pick(keys: list[str], event: gr.SelectData) -> tuple:
            current = gallery.open(keys[event.index])
            return (current, *show(current))

        def on_click(current: Session | None, event: gr.SelectData) -> tuple:
            if current is None:
                return (current, *show(current))
            x, y = event.index
            current = click(current, x, y)
            return (current, *show(current))

        outputs = [photo, evidence, breadcrumb, parts, slider]
        filters = [label, state, contains, page]
        for control in filters:
            control.change(refresh, filters, [thumbs, table, shown_keys])
        demo.load(refresh, filters, [thumbs, table, shown_keys])
        thumbs.select(pick, [shown_keys], [session, *outputs])
        photo.select(on_click, [session], [session, *outputs])
        def on_up(current: Session | None) -> tuple:
            current = go_up(current) if current is not None else None
            return (current, *show(current))

        def on_slider(current: Session | None, position: float) -> tuple:
            current = granularity(current, position) if current is not None else None
            return (current, *show(current))

        up.click(on_up, [session], [session, *outputs])
        slider.release(on_slider, [session, slider], [session, *outputs])
    return demo


def launch_gallery(out: str | os.PathLike, **launch: Any) -> None:
    """Build the browse app and serve it (``launch`` goes to ``gr.Blocks.launch``)."""
    build_gallery(Gallery(out)).launch(**launch)
