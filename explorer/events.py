"""The app's event handlers: widget values in, ``{component: value}`` out.

Each handler names the components it updates; any output it leaves out keeps its value. UI handlers
never raise: a problem is one warning toast and nothing on screen changes (``gr.skip()``), so no
panel turns red; only a photo that cannot be segmented is taken back out of the photo input. API
handlers raise ``gr.Error`` (``AppError`` for clients). An expected mistake (a bad file, an unknown
node, a height out of range) is one line in the server log (``user_error``), never a traceback.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from hierseg import HiersegError

from . import describe, granularity as cuts, hover, session as sessions, views
from .checkpoint_menu import checkpoint_label
from .downloads import Downloads
from .label_panel import LabelPanel
from .pool import SegmenterPool, run_model
from .session import Display, Session
from .uploads import Upload, read_upload

__all__ = ["Explorer", "Updates", "Widgets", "user_error"]

LOG = logging.getLogger("hierseg.app")

# What a handler returns: new values by component (or gr.skip(): nothing changes).
Updates = dict[Any, Any]
# Enough for every session alive at once on one Space; a forgotten file only means an emptied input.
PHOTO_FILES_KEPT = 256


def user_error(message: str, title: str) -> gr.Error:
    """The error for a mistake the person or client made: one warning line in the log, no traceback (gradio
    prints one for every other exception)."""
    LOG.warning("%s: %s", title, message)
    return gr.Error(message, title=title, print_exception=False)


@dataclass(frozen=True, eq=False)
class Widgets:
    """The components the handlers update; ``app.py`` makes them and lays them out."""

    state: gr.State
    photo: gr.Image
    run: gr.Button
    # redrawn after every click
    overlay: gr.Image
    tree: gr.HTML
    click_targets: gr.HTML
    evidence: gr.Label
    prediction: gr.Label
    table: gr.HTML
    breadcrumb: gr.HTML
    caption: gr.HTML
    level: gr.Radio
    up: gr.Button
    export: gr.Button
    # sent once per cut of the tree (a segmentation or a granularity move)
    hover_bridge: gr.HTML
    level_strip: gr.HTML
    granularity: gr.Slider
    granularity_reset: gr.Button
    # sent once per segmentation
    checkpoint: gr.Dropdown
    # one handler's each
    downloads: gr.File
    summary: gr.JSON
    node_info: gr.JSON
    tree_zip: gr.File

    @property
    def view_outputs(self) -> list[Any]:
        """What a click may change."""
        return [self.state, self.overlay, self.tree, self.click_targets, self.evidence, self.prediction, self.table,
                self.breadcrumb, self.caption, self.level, self.up, self.export]

    @property
    def cut_outputs(self) -> list[Any]:
        """What a new cut of the tree (the granularity control) may change."""
        return [*self.view_outputs, self.hover_bridge, self.level_strip, self.granularity]

    @property
    def segment_outputs(self) -> list[Any]:
        """What a new segmentation may change."""
        return [*self.cut_outputs, self.granularity_reset, self.checkpoint, self.run]

    @property
    def photo_outputs(self) -> list[Any]:
        """What a new photo in the input may change: a photo that cannot be segmented is taken back out."""
        return [*self.segment_outputs, self.photo]


class Explorer:
    """Turns widget values into explorer calls and their results into widget values."""

    def __init__(self, pool: SegmenterPool, default_checkpoint: str, checkpoints: list[str], ui: Widgets,
                 downloads: Downloads) -> None:
        self.pool = pool
        self.default_checkpoint = default_checkpoint
        self.checkpoints = checkpoints
        self.ui = ui
        self.downloads = downloads
        # The file each segmented photo came from, by digest: what a failed upload puts back in the input.
        self.photo_files: OrderedDict[str, str] = OrderedDict()

    # ------------------------------------------------------------------ shared steps
    def segment_upload(self, upload: Upload | None, checkpoint: str) -> Session:
        """Decode the uploaded file (its original bytes: EXIF, 16 bit, CMYK...) and segment it.

        Raises:
            gr.Error: no image, an unknown checkpoint, an unreadable file or a failed segmentation.
        """
        if upload is None:
            raise user_error("Upload, paste or drop a photo first.", title="No image")
        if checkpoint not in self.checkpoints:
            raise user_error(f"Unknown checkpoint {checkpoint!r}; pick one of the list.", title="Checkpoint")
        try:
            rgb = upload.decode()
        except HiersegError as exc:
            raise user_error(str(exc), title="Cannot read this image") from exc
        try:
            hierarchy = run_model(self.pool, checkpoint, rgb)
        except HiersegError as exc:
            raise user_error(str(exc), title="Segmentation failed") from exc
        self.photo_files[upload.key] = upload.path
        self.photo_files.move_to_end(upload.key)
        while len(self.photo_files) > PHOTO_FILES_KEPT:
            self.photo_files.popitem(last=False)
        return sessions.new_session(hierarchy, rgb, checkpoint, upload.name, upload.key)

    def shown(self, session: Session) -> Updates:
        """The session and every panel a click redraws."""
        ui, panels = self.ui, views.panels(session)
        return {
            ui.state: session,
            ui.overlay: str(self.downloads.shown_photo(session, panels.overlay)),
            ui.tree: panels.tree,
            ui.click_targets: panels.click_targets,
            ui.evidence: LabelPanel(value=panels.evidence, label=panels.evidence_title),
            ui.prediction: panels.prediction,
            ui.table: panels.table,
            ui.breadcrumb: panels.breadcrumb,
            ui.caption: panels.caption,
            ui.level: gr.Radio(choices=panels.levels, value=panels.level),
            ui.up: gr.Button(interactive=panels.can_go_up),
            ui.export: gr.Button(interactive=True),
        }

    def shown_cut(self, session: Session) -> Updates:
        """``shown`` plus what changes with the cut of the tree: the hover maps, the level strip, the
        granularity's count (not its value: the person is dragging it)."""
        ui = self.ui
        return {
            **self.shown(session),
            ui.hover_bridge: hover.hover_payload(session),
            ui.level_strip: views.level_strip_html(session),
            ui.granularity: gr.Slider(label=views.granularity_label(session)),
        }

    def shown_segmentation(self, session: Session, previous: Session | None = None) -> Updates:
        """``shown_cut`` plus what is sent once per photo; the display options of ``previous`` carry over.

        The granularity control shows only for a tree with a merge tree, at the tree's own cut.
        """
        if previous is not None:
            session = sessions.set_display(session, previous.display)
        ui = self.ui
        offered = cuts.has_granularity(session.source)
        position = (cuts.on_grid(cuts.position_of(session.source, session.height))
                    if offered and session.height is not None else 0.0)
        return {
            **self.shown_cut(session),
            ui.granularity: gr.Slider(value=position, label=views.granularity_label(session), visible=offered),
            ui.granularity_reset: gr.Button(visible=offered),
            ui.checkpoint: gr.Dropdown(value=session.checkpoint),
            ui.run: gr.Button(interactive=True),
        }

    @staticmethod
    def warn(exc: Exception) -> Any:
        """One toast for ``exc``; nothing on screen changes."""
        gr.Warning(getattr(exc, "message", None) or str(exc), title=getattr(exc, "title", None) or "hierseg")
        return gr.skip()

    # ------------------------------------------------------------------ UI handlers
    def on_photo(self, image: dict | None, checkpoint: str, state: Session | None) -> Updates:
        """A new photo is in the input (uploaded, pasted, dropped or an example): segment it.

        Clearing the input (the Upload icon under a loaded photo does, before the picker opens)
        keeps the result on screen, and the same file with the same checkpoint is not segmented
        again, so a cancelled picker or a repeated event loses nothing. A photo that cannot be
        segmented is taken back out of the input, and the photo on screen, if any, put back: the
        input always shows what the result is of.
        """
        try:
            upload = read_upload(image)
            if upload is None or (state is not None and (state.checkpoint, state.key) == (checkpoint, upload.key)):
                return gr.skip()
            return self.shown_segmentation(self.segment_upload(upload, checkpoint), state)
        except (gr.Error, OSError) as exc:
            self.warn(exc)
            return {self.ui.photo: self._shown_photo_file(state)}

    def _shown_photo_file(self, state: Session | None) -> str | None:
        """The file of the photo on screen, if the server still has it (else None: an empty input)."""
        path = self.photo_files.get(state.key) if state is not None else None
        return path if path is not None and Path(path).is_file() else None

    def on_run_again(self, image: dict | None, checkpoint: str, state: Session | None) -> Updates:
        return self._segment_input(image, checkpoint, state)

    def on_checkpoint(self, checkpoint: str, image: dict | None, state: Session | None) -> Updates:
        """Load (or download) a picked or typed checkpoint and re-segment the photo with it.

        When it cannot be loaded (an unknown name, or a release while offline), say why once and put
        the dropdown back on the checkpoint that produced what is on screen.
        """
        in_use = state.checkpoint if state is not None else self.default_checkpoint
        try:
            if checkpoint not in self.checkpoints:
                raise user_error(f"Unknown checkpoint {checkpoint!r}: pick one of the list or type an official "
                                 "release's name (official/...).", title="Checkpoint")
            self.pool.get(checkpoint)
        except (gr.Error, HiersegError) as exc:
            gr.Warning(f"{exc} Still using {checkpoint_label(in_use)}.", title="Cannot load this checkpoint")
            return {self.ui.checkpoint: gr.Dropdown(value=in_use)}
        return self._segment_input(image, checkpoint, state, empty_note=f"Using {checkpoint_label(checkpoint)}.")

    def _segment_input(self, image: dict | None, checkpoint: str, state: Session | None, empty_note: str = "") -> Updates:
        """Segment the photo in the input (its file read once) and show it.

        An empty input is an error toast, or ``empty_note`` when given.
        """
        try:
            upload = read_upload(image)
            if upload is None and empty_note:
                gr.Info(empty_note)
                return gr.skip()
            return self.shown_segmentation(self.segment_upload(upload, checkpoint), state)
        except (gr.Error, OSError) as exc:
            return self.warn(exc)

    def _then(self, state: Session | None, action: Callable[[Session], Session]) -> Updates:
        """Apply ``action`` to the session and show it; before any segmentation, do nothing."""
        if state is None:
            return gr.skip()
        try:
            return self.shown(action(state))
        except ValueError as exc:
            return self.warn(exc)

    # A click adds a segment to the selection (or takes it out) with Ctrl/Shift held (the page sends ``add``)
    # or with the "Add to selection" switch on (``adding``); otherwise it selects one segment.
    def on_image_click(self, state: Session | None, evt: gr.SelectData, adding: bool = False) -> Updates:
        x, y = evt.index
        if adding:
            return self._then(state, lambda s: sessions.toggle_at(s, x, y))
        return self._then(state, lambda s: sessions.drill_to(s, sessions.click_to_node(s, x, y)))

    def on_add_click(self, state: Session | None, evt: gr.EventData) -> Updates:
        """A Ctrl/Shift-click on the photo at ``evt.x``, ``evt.y`` (display pixels; bridge.js sends it instead of
        the plain click)."""
        return self._then(state, lambda s: sessions.toggle_at(s, float(evt.x), float(evt.y)))

    def on_tree_click(self, state: Session | None, evt: gr.EventData, adding: bool = False) -> Updates:
        if adding or getattr(evt, "add", False):
            return self._then(state, lambda s: sessions.toggle_segment(s, evt.node))
        return self._then(state, lambda s: sessions.drill_to(s, sessions.tree_click_target(s, evt.node)))

    def on_node_click(self, state: Session | None, evt: gr.EventData, adding: bool = False) -> Updates:
        if adding or getattr(evt, "add", False):
            return self._then(state, lambda s: sessions.toggle_segment(s, evt.node))
        return self._then(state, lambda s: sessions.drill_to(s, evt.node))

    def on_up(self, state: Session | None) -> Updates:
        return self._then(state, sessions.go_up)

    def on_level(self, state: Session | None, level: int) -> Updates:
        return self._then(state, lambda s: sessions.set_level(s, int(level)))

    def on_granularity(self, state: Session | None, position: float) -> Updates:
        """The granularity slider moved: the photo's tree re-cut there, the selection carried over."""
        if state is None:
            return gr.skip()
        try:
            return self.shown_cut(sessions.set_granularity(state, cuts.height_at(state.source, float(position))))
        except ValueError as exc:
            return self.warn(exc)

    def on_granularity_reset(self, state: Session | None) -> Updates:
        """Back to the photo's first cut (the slider's grid position nearest the model's own), the selection carried."""
        if state is None or not cuts.has_granularity(state.source):
            return gr.skip()
        position = cuts.default_position(state.source)
        try:
            shown = self.shown_cut(sessions.set_granularity(state, cuts.height_at(state.source, position)))
        except ValueError as exc:
            return self.warn(exc)
        return {**shown, self.ui.granularity: gr.Slider(value=position, label=views.granularity_label(shown[self.ui.state]))}

    def on_strip_click(self, state: Session | None, evt: gr.EventData) -> Updates:
        return self._then(state, lambda s: sessions.set_level(s, int(evt.level)))

    def on_key(self, state: Session | None, evt: gr.EventData) -> Updates:
        actions = {"up": sessions.go_up, "next": lambda s: sessions.step_sibling(s, 1),
                   "previous": lambda s: sessions.step_sibling(s, -1)}
        if evt.key not in actions:
            return gr.skip()
        return self._then(state, actions[evt.key])

    def on_too_large(self, evt: gr.EventData) -> Any:
        """The page refused a file over the size limit before uploading it (bridge.js): say so; the input and the
        result on screen stay as they are."""
        gr.Warning(f"{evt.name} is {evt.mb:.0f} MB; photos up to {evt.limit} MB are accepted.", title="File too large")
        LOG.warning("File too large: %s (%.0f MB)", evt.name, evt.mb)
        return gr.skip()

    def on_display(self, state: Session | None, opacity: float, outlines_only: bool, dim: bool) -> Updates:
        return self._then(state, lambda s: sessions.set_display(s, Display(float(opacity), bool(outlines_only), bool(dim))))

    def on_export(self, state: Session | None) -> Updates:
        """The selected segment's mask and cut-out, the tree as COCO RLE and the label-map zip."""
        if state is None:
            gr.Warning("Segment a photo first.", title="Nothing to export")
            return gr.skip()
        files = [str(path) for path in self.downloads.selection_bundle(state)]
        return {self.ui.downloads: gr.File(files, visible=True)}

    # ------------------------------------------------------------------ API handlers
    def segment(self, image: dict | None, checkpoint: str) -> Updates:
        """Segment an image; answers the tree summary (levels, image prediction, the root's children)."""
        state = self.segment_upload(read_upload(image), checkpoint)
        return {self.ui.state: state, self.ui.summary: describe.summary(state)}

    def granularity(self, height: float | None, state: Session | None) -> Updates:
        """Re-cut the last segmented photo's tree with its coarsest level at merge height ``height`` (in
        ``granularity.height_range`` of the summary), the selection carried over; answers the tree summary."""
        if state is None:
            raise user_error("Segment a photo first.", title="Nothing to explore")
        if height is None:
            raise user_error("Give a merge height (the summary's granularity.height_range).", title="Granularity")
        try:
            state = sessions.set_granularity(state, float(height))
        except ValueError as exc:
            raise user_error(str(exc), title="Granularity") from exc
        return {self.ui.state: state, self.ui.summary: describe.summary(state)}

    def drill(self, node_id: str, state: Session | None) -> Updates:
        """Select a node ("level:index", "-1:0" for the whole image); answers it, its chain and its children."""
        if state is None:
            raise user_error("Segment a photo first.", title="Nothing to explore")
        try:
            state = sessions.drill_to(state, node_id)
        except ValueError as exc:
            raise user_error(str(exc), title="No such segment") from exc
        return {self.ui.state: state, self.ui.node_info: describe.drill_info(state, state.selected)}

    def select(self, node_ids: str, state: Session | None) -> Updates:
        """Select several disjoint nodes as one region ("level:index" ids, comma-separated); answers the region's
        label, classes and share (``describe.selection_info``)."""
        if state is None:
            raise user_error("Segment a photo first.", title="Nothing to explore")
        try:
            nodes = [item.strip() for item in (node_ids or "").split(",") if item.strip()]
            state = sessions.select_segments(state, nodes)
        except ValueError as exc:
            raise user_error(str(exc), title="Cannot select these segments") from exc
        return {self.ui.state: state, self.ui.node_info: describe.selection_info(state)}

    def export(self, state: Session | None) -> Updates:
        """Zip of tree.json and level_<l>.png label maps of the last segmentation."""
        if state is None:
            raise user_error("Segment a photo first.", title="Nothing to export")
        return {self.ui.tree_zip: str(self.downloads.tree_zip(state))}
