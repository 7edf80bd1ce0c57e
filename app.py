"""hierseg web app: drop in a photo, point at a segment to see it, click it to reveal its parts.

Run ``python app.py`` (host and port come from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT; Hugging Face
Spaces sets them). The checkpoint is ``$HIERSEG_CHECKPOINT`` or the shipped ``checkpoints/default``;
official CAST releases can be picked in the app and are downloaded from the Hub once.

This file only wires widgets to library calls: the drill state is ``hierseg.session``, what is
shown ``hierseg.views``, the hover data ``hierseg.hover``, the downloads ``hierseg.export`` and the
API answers ``hierseg.describe``. ``build_demo(...)`` makes the app; importing this module loads
no model. API endpoints (README, "API"): ``/segment``, ``/refine``, ``/drill`` and ``/export``; they keep the
segmentation in the session state, so call them from one ``gradio_client.Client``.
"""
from __future__ import annotations

import hashlib
import os
import sys
import uuid
from pathlib import Path
from typing import Any, Callable

import gradio as gr
import numpy as np
import plotly
from PIL import Image

from hierseg import Hierarchy, HiersegError, load_segmenter
from hierseg import describe, export, hover, session as sessions, views
from hierseg.checkpoints import available_checkpoints, checkpoint_label
from hierseg.imageio import load_image
from hierseg.refine import NO_TIME_BUDGET
from hierseg.segmenter_pool import SegmenterPool
from hierseg.session import Display, Session

try:  # ZeroGPU on Hugging Face Spaces; elsewhere the decorator is a no-op.
    import spaces

    gpu = spaces.GPU
except ImportError:

    def gpu(fn: Any) -> Any:
        return fn


HERE = Path(__file__).resolve().parent
EXAMPLES = sorted(str(p.relative_to(HERE)) for p in (HERE / "examples").glob("*.jpg"))
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
MAX_FILE_SIZE = "25mb"
# Sessions keep their segmentation (a few MB of label maps) for an hour after their last event.
STATE_TTL_S = 3600
gr.set_static_paths([str(PLOTLY_JS)])


@gpu
def run_model(pool: SegmenterPool, checkpoint: str, rgb: np.ndarray) -> Hierarchy:
    """The heavy step (superpixels + CAST); the only one that may use a GPU. Returns CPU numpy data."""
    return pool.get(checkpoint)(rgb)


@gpu
def run_refine(pool: SegmenterPool, checkpoint: str, rgb: np.ndarray, steps: int | None,
               progress: Callable[[int, int], None] | None = None) -> Hierarchy:
    """Test-time adaptation on this photo (a private copy of the model), then its tree. Returns CPU numpy data.

    ``steps=None``: the default steps under the default time budget (the button); a step count asked
    for (``/refine``) runs in full, up to ``MAX_REFINE_STEPS``.
    """
    return pool.get(checkpoint).refine(rgb, steps=steps, progress=progress, config=None if steps is None else NO_TIME_BUDGET)


def _file_digest(path: str) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Explorer:
    """The app's event handlers: each turns widget values into library calls and views into widget values.

    UI handlers never raise: a problem is one warning toast, and every output is left as it was
    (``gr.skip()``), so no panel turns red. API handlers raise ``gr.Error`` (``AppError`` for clients).
    """

    def __init__(self, loader: Callable[[str], Any], default_checkpoint: str, checkpoints: list[str]) -> None:
        self.pool = SegmenterPool(loader)
        self.default_checkpoint = default_checkpoint
        self.checkpoints = checkpoints
        self.cache_dir = Path(os.environ.get("GRADIO_TEMP_DIR", "/tmp/gradio")) / "hierseg"

    # ------------------------------------------------------------------ helpers
    def file_path(self, name: str) -> Path:
        """A new file called ``name`` in a folder of its own: what a download is saved as."""
        folder = self.cache_dir / uuid.uuid4().hex
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    def segment_file(self, image: dict | None, checkpoint: str) -> Session:
        """Decode the uploaded file (the original bytes: EXIF, 16 bit, CMYK...) and segment it.

        Raises:
            gr.Error: no image, an unknown checkpoint, an unreadable file or a failed segmentation.
        """
        if not image or not image.get("path"):
            raise gr.Error("Upload, paste or drop a photo first.", title="No image")
        if checkpoint not in self.checkpoints:
            raise gr.Error(f"Unknown checkpoint {checkpoint!r}; pick one of the list.", title="Checkpoint")
        name = image.get("orig_name") or Path(image["path"]).name
        try:
            rgb = load_image(image["path"])
        except HiersegError as exc:
            # The library names the temp file; the person knows the file by its own name.
            raise gr.Error(str(exc).replace(f"'{image['path']}'", f"'{name}'"), title="Cannot read this image") from exc
        try:
            hierarchy = run_model(self.pool, checkpoint, rgb)
        except HiersegError as exc:
            raise gr.Error(str(exc), title="Segmentation failed") from exc
        return sessions.new_session(hierarchy, rgb, checkpoint, Path(name).stem, _file_digest(image["path"]))

    def refine_session(self, state: Session | None, steps: int | None = None,
                       progress: Callable[[int, int], None] | None = None) -> Session:
        """Refine the model on the session's photo and show the refined tree (the first one kept).

        Raises:
            gr.Error: nothing segmented yet, a bad step count, or a failed refinement.
        """
        if state is None:
            raise gr.Error("Segment a photo first, then refine on it.", title="Nothing to refine")
        if steps is not None and not 0 <= steps <= MAX_REFINE_STEPS:
            raise gr.Error(f"Refine takes 0 to {MAX_REFINE_STEPS} steps, not {steps}.", title="Refine")
        try:
            hierarchy = run_refine(self.pool, state.checkpoint, state.rgb, steps, progress)
        except (HiersegError, ValueError) as exc:
            raise gr.Error(str(exc), title="Refinement failed") from exc
        return sessions.with_refinement(state, hierarchy)

    def view_values(self, session: Session) -> tuple[Any, ...]:
        """Values for ``VIEW_OUTPUTS`` after the state."""
        shown = views.view(session)
        path = self.file_path(export.download_name(session.name, session.selected))
        # compress_level=1: a quarter of the default's encode time for ~20 % more bytes.
        Image.fromarray(shown.overlay).save(path, compress_level=1)
        return (
            str(path), shown.tree, shown.evidence, shown.prediction, shown.table, shown.breadcrumb, shown.caption,
            gr.Radio(choices=shown.levels, value=shown.level), gr.Button(interactive=shown.can_go_up),
            gr.Button(interactive=True),
        )

    def show(self, session: Session) -> tuple[Any, ...]:
        return (session, *self.view_values(session))

    def shown_segmentation(self, session: Session, previous: Session | None = None) -> tuple[Any, ...]:
        """Values for ``SEGMENT_OUTPUTS``: the views plus what is sent once per photo (display options carried over)."""
        if previous is not None:
            session = sessions.set_display(session, previous.display)
        return (*self.show(session), hover.hover_payload(session), views.level_strip_html(session),
                gr.Button(interactive=True), gr.Radio(value=session.version, visible=session.alternate is not None),
                gr.Dropdown(value=session.checkpoint))

    @staticmethod
    def skipped(n: int) -> tuple[Any, ...]:
        return tuple(gr.skip() for _ in range(n))

    def warn(self, exc: Exception, n: int) -> tuple[Any, ...]:
        gr.Warning(getattr(exc, "message", None) or str(exc), title=getattr(exc, "title", None) or "hierseg")
        return self.skipped(n)

    # ------------------------------------------------------------------ UI handlers
    def on_photo(self, image: dict | None, checkpoint: str, state: Session | None) -> tuple[Any, ...]:
        """A new photo is in the input: segment it.

        Clearing the input (the Upload icon under a loaded photo does, before the picker opens)
        keeps the result on screen, and the same file with the same checkpoint is not segmented
        again, so a cancelled picker or a repeated change event loses nothing.
        """
        if not image or not image.get("path"):
            return self.skipped(N_SEGMENT_OUTPUTS)
        try:
            if state is not None and state.checkpoint == checkpoint and state.key == _file_digest(image["path"]):
                return self.skipped(N_SEGMENT_OUTPUTS)
            return self.shown_segmentation(self.segment_file(image, checkpoint), state)
        except (gr.Error, OSError) as exc:
            return self.warn(exc, N_SEGMENT_OUTPUTS)

    def on_run_again(self, image: dict | None, checkpoint: str, state: Session | None) -> tuple[Any, ...]:
        try:
            return self.shown_segmentation(self.segment_file(image, checkpoint), state)
        except gr.Error as exc:
            return self.warn(exc, N_SEGMENT_OUTPUTS)

    def on_checkpoint(self, checkpoint: str, image: dict | None, state: Session | None) -> tuple[Any, ...]:
        """Load (or download) a picked checkpoint and re-segment the photo with it.

        When it cannot be loaded (offline), say so once and put the dropdown back on the checkpoint
        that produced what is on screen.
        """
        in_use = state.checkpoint if state is not None else self.default_checkpoint
        try:
            if checkpoint not in self.checkpoints:
                raise gr.Error(f"Unknown checkpoint {checkpoint!r}.", title="Checkpoint")
            self.pool.get(checkpoint)
        except (gr.Error, HiersegError) as exc:
            gr.Warning(f"{exc} Still using {checkpoint_label(in_use)}.", title="Cannot load this checkpoint")
            return (*self.skipped(N_SEGMENT_OUTPUTS - 1), gr.Dropdown(value=in_use))
        if not image or not image.get("path"):
            gr.Info(f"Using {checkpoint_label(checkpoint)}.")
            return self.skipped(N_SEGMENT_OUTPUTS)
        return self.on_run_again(image, checkpoint, state)

    def on_refine(self, state: Session | None, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        """Refine on the photo shown, with a progress bar; the refined tree takes the first one's place."""
        progress(0, desc="Refining on this photo")
        try:
            refined = self.refine_session(
                state, progress=lambda done, total: progress((done, total), desc="Refining on this photo", unit="steps"))
        except gr.Error as exc:
            return self.warn(exc, N_SEGMENT_OUTPUTS)
        meta = refined.hierarchy.meta.get("refine", {})
        changed = sessions.changed_levels(refined)
        what = (f"segments changed at {len(changed)} of {refined.hierarchy.n_levels} levels" if changed else
                "the segments are the same, the class evidence is updated")
        gr.Info(f"Refined in {meta.get('steps_done', 0)} steps, {meta.get('seconds', 0):.1f} s: {what}. "
                "Before / Refined switches between the two trees.")
        return self.shown_segmentation(refined)

    def on_version(self, state: Session | None, version: str) -> tuple[Any, ...]:
        """The before/after toggle: show the photo's first or refined tree."""
        if state is None:
            return self.skipped(N_SEGMENT_OUTPUTS)
        try:
            return self.shown_segmentation(sessions.show_version(state, version))
        except ValueError as exc:
            return self.warn(exc, N_SEGMENT_OUTPUTS)

    def _then(self, state: Session | None, action: Callable[[Session], Session]) -> tuple[Any, ...]:
        """Apply ``action`` to the session and show it; before any segmentation, do nothing."""
        if state is None:
            return self.skipped(N_VIEW_OUTPUTS)
        try:
            return self.show(action(state))
        except ValueError as exc:
            return self.warn(exc, N_VIEW_OUTPUTS)

    def on_image_click(self, state: Session | None, evt: gr.SelectData) -> tuple[Any, ...]:
        x, y = evt.index
        return self._then(state, lambda s: sessions.drill_to(s, sessions.click_to_node(s, x, y)))

    def on_tree_click(self, state: Session | None, evt: gr.EventData) -> tuple[Any, ...]:
        return self._then(state, lambda s: sessions.drill_to(s, sessions.tree_click_target(s, evt.node)))

    def on_node_click(self, state: Session | None, evt: gr.EventData) -> tuple[Any, ...]:
        return self._then(state, lambda s: sessions.drill_to(s, evt.node))

    def on_up(self, state: Session | None) -> tuple[Any, ...]:
        return self._then(state, sessions.go_up)

    def on_level(self, state: Session | None, level: int) -> tuple[Any, ...]:
        return self._then(state, lambda s: sessions.set_level(s, int(level)))

    def on_strip_click(self, state: Session | None, evt: gr.EventData) -> tuple[Any, ...]:
        return self._then(state, lambda s: sessions.set_level(s, int(evt.level)))

    def on_key(self, state: Session | None, evt: gr.EventData) -> tuple[Any, ...]:
        actions = {"up": sessions.go_up, "next": lambda s: sessions.step_sibling(s, 1),
                   "previous": lambda s: sessions.step_sibling(s, -1)}
        if evt.key not in actions:
            return self.skipped(N_VIEW_OUTPUTS)
        return self._then(state, actions[evt.key])

    def on_display(self, state: Session | None, opacity: float, outlines_only: bool, dim: bool) -> tuple[Any, ...]:
        return self._then(state, lambda s: sessions.set_display(s, Display(float(opacity), bool(outlines_only), bool(dim))))

    def on_export(self, state: Session | None) -> list[str] | Any:
        """The selected segment's mask and cut-out, the tree as COCO RLE and the label-map zip."""
        if state is None:
            gr.Warning("Segment a photo first.", title="Nothing to export")
            return gr.skip()
        node, name, hierarchy = state.selected, state.name, state.hierarchy
        files = [
            export.export_mask(hierarchy, node, self.file_path(export.download_name(name, node, "mask"))),
            export.export_cutout(hierarchy, state.rgb, node, self.file_path(export.download_name(name, node, "cutout"))),
            export.export_coco(hierarchy, self.file_path(export.download_name(name, None, "coco", "json")), name),
            export.export_zip(hierarchy, self.file_path(export.download_name(name, None, "tree", "zip"))),
        ]
        return [str(path) for path in files]

    # ------------------------------------------------------------------ API handlers
    def segment(self, image: dict | None, checkpoint: str) -> tuple[Session, dict]:
        """Segment an image; returns the tree summary (levels, image prediction, the root's children)."""
        state = self.segment_file(image, checkpoint)
        return state, describe.summary(state)

    def refine(self, steps: float | None, state: Session | None) -> tuple[Session, dict]:
        """Refine the model on the last segmented photo (``steps`` empty: the default); returns the tree summary."""
        if steps is not None and float(steps) != int(steps):
            raise gr.Error(f"steps must be a whole number, not {steps}.", title="Refine")
        state = self.refine_session(state, None if steps is None else int(steps))
        return state, describe.summary(state)

    def drill(self, node_id: str, state: Session | None) -> tuple[Session, dict]:
        """Select a node ("level:index", "-1:0" for the whole image); returns it, its chain and its children."""
        if state is None:
            raise gr.Error("Segment a photo first.", title="Nothing to explore")
        try:
            state = sessions.drill_to(state, node_id)
        except ValueError as exc:
            raise gr.Error(str(exc), title="No such segment") from exc
        return state, describe.drill_info(state, state.selected)

    def export(self, state: Session | None) -> str:
        """Zip of tree.json and level_<l>.png label maps of the last segmentation."""
        if state is None:
            raise gr.Error("Segment a photo first.", title="Nothing to export")
        return str(export.export_zip(state.hierarchy, self.file_path(export.download_name(state.name, None, "tree", "zip"))))


# ---------------------------------------------------------------------- page scripts
# The hover bridge: holds every level's label map (sent once per segmentation), outlines the segment
# under the pointer or of a hovered tree sector on a canvas over the photo, and turns keys into events.
# Nothing here talks to the server except the keyboard trigger.
BRIDGE_JS = """
const hs = window.hierseg = window.hierseg || {};
hs.view = hs.view || null;
function decode() {
  hs.maps = null;
  if (props.value) {
    const data = JSON.parse(props.value);
    hs.width = data.width; hs.height = data.height;
    hs.maps = data.maps.map(runs => {
      const out = new Int32Array(data.width * data.height);
      for (let i = 0, p = 0; i < runs.length; i += 2) { out.fill(runs[i], p, p + runs[i + 1]); p += runs[i + 1]; }
      return out;
    });
  }
  hs.outline(null);
}
function layer() {
  const img = document.querySelector('#overlay img');
  if (!img || !img.naturalWidth) return null;
  let canvas = img.parentElement.querySelector('canvas.hover-outline');
  if (!canvas) {
    canvas = document.createElement('canvas');
    canvas.className = 'hover-outline';
    img.parentElement.style.position = 'relative';
    img.parentElement.appendChild(canvas);
  }
  // The photo is letterboxed inside the img box (object-fit: contain): cover the picture only.
  const scale = Math.min(img.clientWidth / img.naturalWidth, img.clientHeight / img.naturalHeight);
  const w = img.naturalWidth * scale, h = img.naturalHeight * scale;
  Object.assign(canvas.style, {left: (img.offsetLeft + (img.clientWidth - w) / 2) + 'px',
    top: (img.offsetTop + (img.clientHeight - h) / 2) + 'px', width: w + 'px', height: h + 'px'});
  return canvas;
}
hs.outline = function (node) {
  const canvas = layer();
  if (!canvas) return;
  canvas.dataset.node = node || '';
  const ctx = canvas.getContext('2d');
  if (!node || !hs.maps) { ctx.clearRect(0, 0, canvas.width, canvas.height); return; }
  const [level, index] = node.split(':').map(Number);
  if (level < 0) { ctx.clearRect(0, 0, canvas.width, canvas.height); return; }
  const w = hs.width, h = hs.height, map = hs.maps[level];
  canvas.width = w; canvas.height = h;
  const pixels = ctx.createImageData(w, h), data = pixels.data;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const p = y * w + x;
    if (map[p] !== index) continue;
    const edge = x === 0 || y === 0 || x === w - 1 || y === h - 1 || map[p - 1] !== index || map[p + 1] !== index
      || map[p - w] !== index || map[p + w] !== index;
    const o = 4 * p;
    if (edge) { data[o] = 255; data[o + 1] = 235; data[o + 2] = 59; data[o + 3] = 255; }
    else { data[o] = data[o + 1] = data[o + 2] = 255; data[o + 3] = 46; }
  }
  ctx.putImageData(pixels, 0, 0);
};
// The node a click at this point would select (mirrors hierseg.session.click_to_node).
function nodeUnder(ev) {
  const img = ev.target, view = hs.view;
  if (!hs.maps || !view) return null;
  const scale = Math.min(img.clientWidth / img.naturalWidth, img.clientHeight / img.naturalHeight);
  const left = (img.clientWidth - img.naturalWidth * scale) / 2, top = (img.clientHeight - img.naturalHeight * scale) / 2;
  const fx = (ev.offsetX - left) / (img.naturalWidth * scale), fy = (ev.offsetY - top) / (img.naturalHeight * scale);
  if (fx < 0 || fy < 0 || fx >= 1 || fy >= 1) return null;
  const p = Math.floor(fy * hs.height) * hs.width + Math.floor(fx * hs.width);
  const [level, index] = view.selected.split(':').map(Number);
  const shown = level < 0 || hs.maps[level][p] === index ? view.level : level;
  return shown + ':' + hs.maps[shown][p];
}
if (!hs.wired) {
  hs.wired = true;
  document.addEventListener('mousemove', ev => {
    if (ev.target.matches && ev.target.matches('#overlay img')) hs.outline(nodeUnder(ev));
  });
  document.addEventListener('mouseout', ev => {
    if (ev.target.matches && ev.target.matches('#overlay img')) hs.outline(null);
  });
  window.addEventListener('hierseg-hover', ev => hs.outline(ev.detail));
  window.addEventListener('hierseg-view', () => hs.outline(null));
  document.addEventListener('keydown', ev => {
    const target = ev.target;
    if (!hs.maps || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    if (target.closest && target.closest('input, textarea, select, [contenteditable="true"]')) return;
    const key = {Escape: 'up', Backspace: 'up', ArrowRight: 'next', ArrowDown: 'next',
                 ArrowLeft: 'previous', ArrowUp: 'previous'}[ev.key];
    if (!key) return;
    ev.preventDefault();
    hs.trigger('keyboard', {key: key});
  });
}
hs.trigger = trigger;
decode();
watch('value', decode);
"""

TREE_JS = """
const plot = element.querySelector('.tree-plot');
const hs = window.hierseg = window.hierseg || {};
function draw() {
  if (!props.value) { Plotly.purge(plot); return; }
  const fig = JSON.parse(props.value);
  Plotly.react(plot, fig.data, fig.layout, {displayModeBar: false, responsive: true});
  hs.view = fig.layout.meta;
  window.dispatchEvent(new CustomEvent('hierseg-view'));
  if (!plot._hiersegWired) {  // plot.on exists only after the first Plotly.react
    plot.on('plotly_sunburstclick', ev => {
      trigger('node_click', {node: ev.points[0].id});
      return false;  // Python redraws, so the tree never disagrees with the photo
    });
    plot.on('plotly_hover', ev => window.dispatchEvent(new CustomEvent('hierseg-hover', {detail: ev.points[0].id})));
    plot.on('plotly_unhover', () => window.dispatchEvent(new CustomEvent('hierseg-hover', {detail: null})));
    plot._hiersegWired = true;
  }
}
draw();
watch('value', draw);
"""

# Breadcrumb and table: one delegated listener on the component survives every re-render.
NODE_CLICK_JS = """
element.addEventListener('click', ev => {
  const item = ev.target.closest('[data-node]');
  if (item) trigger('node_click', {node: item.dataset.node});
});
element.addEventListener('mouseover', ev => {
  const item = ev.target.closest('tr[data-node]');
  window.dispatchEvent(new CustomEvent('hierseg-hover', {detail: item ? item.dataset.node : null}));
});
"""

STRIP_JS = """
const hs = window.hierseg = window.hierseg || {};
function mark() {
  const level = hs.view ? String(hs.view.level) : null;
  element.querySelectorAll('[data-level]').forEach(b => b.classList.toggle('current', b.dataset.level === level));
}
element.addEventListener('click', ev => {
  const item = ev.target.closest('[data-level]');
  if (item) trigger('level_click', {level: Number(item.dataset.level)});
});
window.addEventListener('hierseg-view', mark);
watch('value', () => requestAnimationFrame(mark));
"""

CSS = """
#tree .tree-plot { height: 360px; width: 100%; }
.crumbs { display: flex; flex-wrap: wrap; align-items: center; gap: 4px; font-size: 0.95em; }
.crumb { border: 1px solid var(--border-color-primary); border-radius: 6px; padding: 2px 8px;
  background: var(--background-fill-secondary); cursor: pointer; }
.crumb.current { font-weight: 600; cursor: default; background: var(--background-fill-primary); }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px;
  border: 1px solid rgba(0,0,0,.25); }
.sep { color: var(--body-text-color-subdued); }
#overlay img { cursor: crosshair; }
canvas.hover-outline { position: absolute; pointer-events: none; image-rendering: pixelated; }
.caption { margin: 2px 0; font-size: 0.92em; color: var(--body-text-color-subdued); }
.level-strip { display: flex; gap: 6px; overflow-x: auto; padding-bottom: 4px; }
.level-thumb { flex: 0 0 auto; border: 2px solid transparent; border-radius: 6px; padding: 2px; background: none;
  cursor: pointer; display: flex; flex-direction: column; align-items: center; font-size: 0.75em; }
.level-thumb img { height: 64px; width: auto; border-radius: 4px; }
.level-thumb.current { border-color: var(--color-accent); }
.table-scroll { overflow-x: auto; max-width: 100%; }
table.segments { border-collapse: collapse; width: 100%; font-size: 0.9em; }
table.segments th, table.segments td { padding: 3px 8px; text-align: left; white-space: nowrap;
  border-bottom: 1px solid var(--border-color-primary); }
table.segments tbody tr { cursor: pointer; }
table.segments tbody tr:hover { background: var(--background-fill-secondary); }
/* Phone: once there is a result, it comes first (photo, then tree), the input after it. */
@media (max-width: 768px) {
  #main-row:has(#overlay img) #result-col { order: -2; }
  #main-row:has(#overlay img) #tree-col { order: -1; }
  #tree .tree-plot { height: 280px; }
}
"""

INTRO = """# hierseg: photo → part-whole tree
Drop in a photo and CAST builds its part-whole tree. **Point at a segment** to see it, **click** it (on the photo,
the tree or the table) to reveal its parts; Esc goes back up, the arrow keys step between siblings."""

LAUNCH_KWARGS: dict[str, Any] = dict(
    max_file_size=MAX_FILE_SIZE, css=CSS, theme=gr.themes.Soft(primary_hue="emerald"), footer_links=["api", "gradio"],
)

VIEW_NAMES = ("state", "overlay", "tree", "evidence", "prediction", "table", "breadcrumb", "caption", "level", "up", "export")
N_VIEW_OUTPUTS = len(VIEW_NAMES)
N_SEGMENT_OUTPUTS = N_VIEW_OUTPUTS + 5  # + hover maps, level strip, refine button, version toggle, checkpoint (last)
# An API caller may ask for more steps than the app's default, within reason (each costs about a second on CPU).
MAX_REFINE_STEPS = 50


def build_demo(
    loader: Callable[[str], Any] = load_segmenter,
    default_checkpoint: str | None = None,
    checkpoints: list[str] | None = None,
    preload: bool = False,
) -> gr.Blocks:
    """The app. ``loader`` maps a checkpoint name to a segmenter (tests pass their own); nothing is
    loaded unless ``preload``, which loads the default at once and shows a notice if that fails."""
    default_checkpoint = default_checkpoint or os.environ.get("HIERSEG_CHECKPOINT") or "default"
    checkpoints = list(checkpoints if checkpoints is not None else available_checkpoints())
    if default_checkpoint not in checkpoints:
        checkpoints.insert(0, default_checkpoint)
    explorer = Explorer(loader, default_checkpoint, checkpoints)
    startup_error = ""
    if preload:
        try:  # so the first photo does not pay for loading
            explorer.pool.get(default_checkpoint)
        except HiersegError as exc:
            startup_error = str(exc)
            print(f"hierseg app: no checkpoint could be loaded: {exc}", file=sys.stderr)

    with gr.Blocks(title="hierseg: part-whole trees from CAST", delete_cache=(3600, 3600)) as demo:
        explorer.cache_dir = Path(demo.GRADIO_CACHE) / "hierseg"  # served in place, swept by delete_cache
        demo.explorer = explorer
        gr.Markdown(INTRO)
        if startup_error:
            gr.Markdown(
                f"> ⚠️ **No checkpoint could be loaded.** {startup_error}\n>\n> Set `HIERSEG_CHECKPOINT` to a "
                "checkpoint folder and restart, or pick an official release below (needs internet).",
                elem_id="startup-error",
            )
        state = gr.State(None, time_to_live=STATE_TTL_S)
        with gr.Row(equal_height=False, elem_id="main-row"):
            with gr.Column(scale=3, min_width=260, elem_id="input-col"):
                gr.Markdown("**Photo** (upload, paste or drop; it is segmented at once)")
                input_image = gr.Image(
                    show_label=False, type="filepath", image_mode=None, sources=["upload", "clipboard"],
                    elem_id="input-image", height=220,
                )
                with gr.Row():
                    checkpoint = gr.Dropdown(
                        [(checkpoint_label(name), name) for name in checkpoints], value=default_checkpoint,
                        label="Checkpoint", elem_id="checkpoint", scale=3,
                    )
                    run_button = gr.Button("↻ Run again", elem_id="run-button", scale=1, min_width=100)
                refine_button = gr.Button("✨ Refine on this photo", elem_id="refine-button", interactive=False)
                version = gr.Radio([("Before", "first"), ("Refined", "refined")], value="first", visible=False,
                                   label="Tree shown", elem_id="refine-version")
                gr.Examples(
                    [[path] for path in EXAMPLES], inputs=[input_image], cache_examples=False,
                    example_labels=[Path(path).stem for path in EXAMPLES], label="Examples",
                )
                prediction = gr.Label(num_top_classes=3, label="Whole image", elem_id="prediction")
                with gr.Accordion("Display", open=False, elem_id="display"):
                    opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Colour opacity", elem_id="opacity")
                    outlines_only = gr.Checkbox(False, label="Outlines only", elem_id="outlines-only")
                    dim = gr.Checkbox(True, label="Dim outside the selection", elem_id="dim")
            with gr.Column(scale=6, min_width=340, elem_id="result-col"):
                breadcrumb = gr.HTML("", js_on_load=NODE_CLICK_JS, elem_id="breadcrumb")
                overlay = gr.Image(
                    show_label=False, format="png", interactive=False, elem_id="overlay",
                    buttons=["download", "fullscreen"],
                )
                caption = gr.HTML("", js_on_load=None, elem_id="caption")
                level_strip = gr.HTML("", js_on_load=STRIP_JS, elem_id="level-strip")
                with gr.Row():
                    up_button = gr.Button("⬆ Up", size="sm", scale=0, min_width=90, elem_id="up-button", interactive=False)
                    level = gr.Radio([], label="Granularity: colour the segments of", elem_id="level", scale=5)
            with gr.Column(scale=4, min_width=300, elem_id="tree-col"):
                tree = gr.HTML(
                    None, html_template="<div class='tree-plot'></div>", js_on_load=TREE_JS, elem_id="tree",
                    head=f'<script src="/gradio_api/file={PLOTLY_JS}"></script>',
                )
                evidence = gr.Label(num_top_classes=5, label="Selected segment", elem_id="evidence")
        with gr.Row():
            with gr.Column(scale=4):
                table = gr.HTML("", js_on_load=NODE_CLICK_JS, elem_id="segments")
            with gr.Column(scale=1, min_width=220):
                export_button = gr.Button("⬇ Export selected segment + tree", elem_id="export", interactive=False)
                export_files = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="downloads")
        bridge = gr.HTML(None, html_template="<div class='hover-bridge'></div>", js_on_load=BRIDGE_JS,
                         elem_id="hover-bridge")

        # Hidden twins for the API: plain arguments instead of click payloads.
        with gr.Row(visible=False):
            api_segment = gr.Button("segment")
            api_refine = gr.Button("refine")
            refine_steps = gr.Number(None, label="steps", precision=0)
            api_drill = gr.Button("drill")
            api_export = gr.Button("export")
            node_id = gr.Textbox(label="node id")
            summary_json = gr.JSON(label="summary")
            drill_json = gr.JSON(label="node")
            export_file = gr.File(label="export")

        view_outputs = [state, overlay, tree, evidence, prediction, table, breadcrumb, caption, level, up_button,
                        export_button]
        # The checkpoint dropdown comes last: on_checkpoint updates it alone when a checkpoint cannot load.
        segment_outputs = [*view_outputs, bridge, level_strip, refine_button, version, checkpoint]
        assert len(view_outputs) == N_VIEW_OUTPUTS and len(segment_outputs) == N_SEGMENT_OUTPUTS
        # Segmentation is heavy: one at a time. preprocess=False hands over the uploaded file's path
        # untouched (gr.Image would re-encode it and raise on non-images before we can explain).
        heavy: dict[str, Any] = dict(concurrency_id="segment", concurrency_limit=1, preprocess=False)
        # Clicks only read the stored session: many at once, no full-screen progress.
        light: dict[str, Any] = dict(
            concurrency_id="explore", concurrency_limit=8, show_progress="minimal", api_visibility="private"
        )
        private: dict[str, Any] = dict(api_visibility="private", **heavy)

        input_image.change(explorer.on_photo, [input_image, checkpoint, state], segment_outputs, **private)
        run_button.click(explorer.on_run_again, [input_image, checkpoint, state], segment_outputs, **private)
        checkpoint.input(explorer.on_checkpoint, [checkpoint, input_image, state], segment_outputs, **private)
        # Refinement is as heavy as segmentation and shares its queue.
        refine_button.click(explorer.on_refine, state, segment_outputs, api_visibility="private",
                            concurrency_id="segment", concurrency_limit=1)
        version.input(explorer.on_version, [state, version], segment_outputs, **light)

        overlay.select(explorer.on_image_click, state, view_outputs, **light)
        tree.node_click(explorer.on_tree_click, state, view_outputs, **light)
        breadcrumb.node_click(explorer.on_node_click, state, view_outputs, **light)
        table.node_click(explorer.on_node_click, state, view_outputs, **light)
        level_strip.level_click(explorer.on_strip_click, state, view_outputs, **light)
        bridge.keyboard(explorer.on_key, state, view_outputs, **light)
        up_button.click(explorer.on_up, state, view_outputs, **light)
        level.input(explorer.on_level, [state, level], view_outputs, **light)
        display_inputs = [state, opacity, outlines_only, dim]
        opacity.release(explorer.on_display, display_inputs, view_outputs, **light)
        outlines_only.input(explorer.on_display, display_inputs, view_outputs, **light)
        dim.input(explorer.on_display, display_inputs, view_outputs, **light)
        export_button.click(explorer.on_export, state, export_files, **light)

        api_segment.click(explorer.segment, [input_image, checkpoint], [state, summary_json], api_name="segment", **heavy)
        api_refine.click(explorer.refine, [refine_steps, state], [state, summary_json], api_name="refine",
                         concurrency_id="segment", concurrency_limit=1)
        api_drill.click(explorer.drill, [node_id, state], [state, drill_json], api_name="drill",
                        concurrency_id="explore", concurrency_limit=8)
        api_export.click(explorer.export, state, export_file, api_name="export", concurrency_id="explore",
                         concurrency_limit=8)

    demo.queue(max_size=64)
    return demo


if __name__ == "__main__":
    build_demo(preload=True).launch(**LAUNCH_KWARGS)
