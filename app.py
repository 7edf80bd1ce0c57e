"""hierseg web app: drop in a photo, click a segment to reveal its parts.

Run ``python app.py`` (host and port come from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT; Hugging Face
Spaces sets them). The checkpoint is ``$HIERSEG_CHECKPOINT`` or the shipped ``checkpoints/default``;
official CAST releases can be picked in the app and are downloaded from the Hub once.

This file only wires widgets to library calls: the drill logic, the tree figure, the tables and the
export live in ``hierseg.explore``. API endpoints (see README, "API"): ``/segment`` (image in, tree
summary out), ``/drill`` (node id in, its children and evidence out) and ``/export`` (zip of
``tree.json`` and one lossless PNG label map per level). They keep the segmentation in the session
state, so call them from one ``gradio_client.Client``.
"""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import plotly
from PIL import Image

from hierseg import Hierarchy, HiersegError, load_segmenter
from hierseg import explore
from hierseg.imageio import load_image

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
EXPORT_NAME = "hierseg-tree.zip"
# Sessions keep their segmentation (a few MB of label maps) for an hour after their last event.
STATE_TTL_S = 3600
gr.set_static_paths([str(PLOTLY_JS)])

DEFAULT_CHECKPOINT = os.environ.get("HIERSEG_CHECKPOINT") or "default"
CHECKPOINTS = explore.available_checkpoints()
if DEFAULT_CHECKPOINT not in CHECKPOINTS:
    CHECKPOINTS.insert(0, DEFAULT_CHECKPOINT)
POOL = explore.SegmenterPool(load_segmenter)
try:  # load once at start-up, so the first photo does not pay for it
    POOL.get(DEFAULT_CHECKPOINT)
    STARTUP_ERROR = ""
except HiersegError as exc:
    STARTUP_ERROR = str(exc)
    print(f"hierseg app: no checkpoint could be loaded: {exc}", file=sys.stderr)


@gpu
def run_model(checkpoint: str, rgb: np.ndarray) -> Hierarchy:
    """The heavy step (superpixels + CAST); the only one that may use a GPU. Returns CPU numpy data."""
    return POOL.get(checkpoint)(rgb)


# ---------------------------------------------------------------------- helpers
def _cache_path(name: str, keep_name: bool = False) -> Path:
    """A new file in gradio's cache: served in place (no copy) and swept by ``delete_cache``.

    With ``keep_name`` the file is called ``name`` (in a folder of its own: it is what a download
    is saved as); otherwise ``name`` gets a unique prefix.
    """
    unique = uuid.uuid4().hex
    folder = Path(demo.GRADIO_CACHE) / "hierseg"
    if keep_name:
        folder = folder / unique
    folder.mkdir(parents=True, exist_ok=True)
    return folder / (name if keep_name else f"{unique}-{name}")


def _segment(image: dict | None, checkpoint: str) -> explore.ExploreState:
    """Decode the uploaded file (the original bytes: EXIF, 16 bit, CMYK...) and segment it."""
    if not image or not image.get("path"):
        raise gr.Error("Upload, paste or drop a photo first.", title="No image")
    if checkpoint not in CHECKPOINTS:
        raise gr.Error(f"Unknown checkpoint {checkpoint!r}; pick one of the list.", title="Checkpoint")
    try:
        rgb = load_image(image["path"])
    except HiersegError as exc:
        # The library names the temp file; the person knows the file by its own name.
        name = image.get("orig_name") or "this file"
        raise gr.Error(str(exc).replace(f"'{image['path']}'", f"'{name}'"), title="Cannot read this image") from exc
    try:
        hierarchy = run_model(checkpoint, rgb)
    except HiersegError as exc:
        raise gr.Error(str(exc), title="Segmentation failed") from exc
    return explore.new_state(hierarchy, rgb, checkpoint)


def _require(state: explore.ExploreState | None) -> explore.ExploreState:
    if state is None:
        raise gr.Error("Segment a photo first.", title="Nothing to explore")
    return state


def _drill(state: explore.ExploreState | None, node_id: str) -> explore.ExploreState:
    state = _require(state)
    try:
        return explore.drill_to(state, node_id)
    except ValueError as exc:
        raise gr.Error(str(exc), title="No such segment") from exc


def _views(state: explore.ExploreState | None) -> tuple[Any, ...]:
    """Outputs for ``VIEW_OUTPUTS`` (after the state itself)."""
    if state is None:
        return (None, None, "", {}, {}, None, "", gr.Radio(choices=[], value=None))
    shown = explore.view(state)
    path = _cache_path("overlay.png")
    # compress_level=1: a quarter of the default's encode time for ~20 % more bytes.
    Image.fromarray(shown.overlay).save(path, compress_level=1)
    table = gr.Dataframe(value=shown.table_rows, headers=shown.table_headers)
    return (
        str(path),
        shown.tree,
        shown.evidence,
        shown.prediction,
        table,
        shown.breadcrumb,
        gr.Radio(choices=shown.levels, value=shown.level),
    )


def _show(state: explore.ExploreState | None) -> tuple[Any, ...]:
    return (state, *_views(state))


# ---------------------------------------------------------------------- UI handlers
def segment_ui(image: dict | None, checkpoint: str) -> tuple[Any, ...]:
    return _show(_segment(image, checkpoint))


def segment_or_clear(image: dict | None, checkpoint: str) -> tuple[Any, ...]:
    """Segment a newly set image; clearing the input clears the views."""
    return _show(None) if not image else segment_ui(image, checkpoint)


def on_image_click(state: explore.ExploreState | None, evt: gr.SelectData) -> tuple[Any, ...]:
    state = _require(state)
    x, y = evt.index
    shown = explore.display_size(state.hierarchy.image_size)
    return _show(explore.drill_to(state, explore.click_to_node(state, x, y, shown)))


def on_tree_click(state: explore.ExploreState | None, evt: gr.EventData) -> tuple[Any, ...]:
    state = _require(state)
    try:
        target = explore.tree_click_target(state, evt.node)
    except ValueError as exc:
        raise gr.Error(str(exc), title="No such segment") from exc
    return _show(explore.drill_to(state, target))


def on_crumb_click(state: explore.ExploreState | None, evt: gr.EventData) -> tuple[Any, ...]:
    return _show(_drill(state, evt.node))


def on_row_click(state: explore.ExploreState | None, evt: gr.SelectData) -> tuple[Any, ...]:
    return _show(_drill(state, str(evt.row_value[0])))


def on_up(state: explore.ExploreState | None) -> tuple[Any, ...]:
    return _show(explore.go_up(_require(state)))


def on_level(state: explore.ExploreState | None, level: int) -> tuple[Any, ...]:
    return _show(explore.set_level(_require(state), int(level)))


def export_ui(state: explore.ExploreState | None) -> str | None:
    """The zip behind the download button (None, i.e. disabled, before a segmentation)."""
    return None if state is None else export(state)


def choose_checkpoint(checkpoint: str) -> None:
    """Load (or download and convert) a checkpoint when picked; says so at once when offline."""
    if checkpoint not in CHECKPOINTS:
        raise gr.Error(f"Unknown checkpoint {checkpoint!r}.", title="Checkpoint")
    try:
        POOL.get(checkpoint)
    except HiersegError as exc:
        raise gr.Error(str(exc), title="Cannot load this checkpoint", duration=None) from exc
    gr.Info(f"Using {checkpoint}.")


# ---------------------------------------------------------------------- API handlers
def segment(image: dict | None, checkpoint: str) -> tuple[explore.ExploreState, dict]:
    """Segment an image; returns the tree summary (levels, image prediction, the root's children)."""
    state = _segment(image, checkpoint)
    return state, explore.summary(state)


def drill(node_id: str, state: explore.ExploreState | None) -> tuple[explore.ExploreState, dict]:
    """Select a node ("level:index", "-1:0" for the whole image); returns its children and class evidence."""
    state = _drill(state, node_id)
    return state, explore.drill_info(state.hierarchy, state.selected)


def export(state: explore.ExploreState | None) -> str:
    """Zip of tree.json and level_<l>.png label maps of the last segmentation."""
    return str(explore.export_zip(_require(state).hierarchy, _cache_path(EXPORT_NAME, keep_name=True)))


# ---------------------------------------------------------------------- layout
TREE_JS = """
const plot = element.querySelector('.tree-plot');
function draw() {
  if (!props.value) { Plotly.purge(plot); return; }
  const fig = JSON.parse(props.value);
  Plotly.react(plot, fig.data, fig.layout, {displayModeBar: false, responsive: true});
  if (!plot._hiersegWired) {  // plot.on exists only after the first Plotly.react
    plot.on('plotly_sunburstclick', ev => {
      trigger('node_click', {node: ev.points[0].id});
      return false;  // Python redraws the zoom, so the tree never disagrees with the photo
    });
    plot._hiersegWired = true;
  }
}
draw();
watch('value', draw);
"""

CRUMBS_JS = """
element.addEventListener('click', ev => {
  const crumb = ev.target.closest('[data-node]');
  if (crumb) trigger('node_click', {node: crumb.dataset.node});
});
"""

CSS = """
#tree .tree-plot { height: 360px; width: 100%; }
#breadcrumb .crumbs { display: flex; flex-wrap: wrap; align-items: center; gap: 4px; font-size: 0.95em; }
#breadcrumb .crumb { border: 1px solid var(--border-color-primary); border-radius: 6px; padding: 2px 8px;
  background: var(--background-fill-secondary); cursor: pointer; }
#breadcrumb .crumb.current { font-weight: 600; cursor: default; background: var(--background-fill-primary); }
#breadcrumb .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; }
#breadcrumb .sep { color: var(--body-text-color-subdued); }
#overlay img { cursor: crosshair; }
"""

INTRO = """# hierseg: photo → part-whole tree
Drop in a photo and CAST builds its part-whole tree. **Click a segment on the photo or in the tree** to reveal its
parts; the breadcrumb, the table and **⬆ Up** take you back. Colours match between the photo and the tree."""

with gr.Blocks(title="hierseg: part-whole trees from CAST", delete_cache=(3600, 3600)) as demo:
    gr.Markdown(INTRO)
    if STARTUP_ERROR:
        gr.Markdown(
            f"> ⚠️ **No checkpoint could be loaded.** {STARTUP_ERROR}\n>\n> Set `HIERSEG_CHECKPOINT` to a "
            "checkpoint folder and restart, or pick an official release below (needs internet).",
            elem_id="startup-error",
        )
    state = gr.State(None, time_to_live=STATE_TTL_S)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=260):
            input_image = gr.Image(
                label="Photo (upload, paste or drop)", type="filepath", image_mode=None,
                sources=["upload", "clipboard"], elem_id="input-image", height=260,
            )
            checkpoint = gr.Dropdown(
                [(Path(name).name if Path(name).is_dir() else name, name) for name in CHECKPOINTS],
                value=DEFAULT_CHECKPOINT, label="Checkpoint", elem_id="checkpoint",
            )
            segment_button = gr.Button("Segment", variant="primary", elem_id="segment-button")
            gr.Examples(
                [[path] for path in EXAMPLES], inputs=[input_image], cache_examples=False,
                example_labels=[Path(path).stem for path in EXAMPLES], label="Examples",
            )
            prediction = gr.Label(num_top_classes=3, label="Whole image", elem_id="prediction")
        with gr.Column(scale=6, min_width=360):
            breadcrumb = gr.HTML("", js_on_load=CRUMBS_JS, elem_id="breadcrumb")
            overlay = gr.Image(
                label="Click a segment to reveal its parts", format="png", interactive=False,
                elem_id="overlay", buttons=["download", "fullscreen"],
            )
            with gr.Row():
                up_button = gr.Button("⬆ Up", size="sm", scale=0, min_width=90, elem_id="up-button")
                level = gr.Radio([], label="Colour the parts at", elem_id="level", scale=5)
        with gr.Column(scale=4, min_width=300):
            tree = gr.HTML(
                None, html_template="<div class='tree-plot'></div>", js_on_load=TREE_JS, elem_id="tree",
                head=f'<script src="/gradio_api/file={PLOTLY_JS}"></script>',
            )
            evidence = gr.Label(num_top_classes=5, label="Selected segment", elem_id="evidence")
    with gr.Row():
        table = gr.Dataframe(
            headers=["node", "top class", "probability", "% of image"], label="Segments shown (click a row)",
            interactive=False, elem_id="segments", scale=4,
        )
        export_button = gr.DownloadButton(
            "⬇ Download tree.json + label maps (zip)", value=None, elem_id="export", scale=1,
        )

    # Hidden twins for the API: plain arguments instead of click payloads.
    with gr.Row(visible=False):
        api_segment = gr.Button("segment")
        api_drill = gr.Button("drill")
        api_export = gr.Button("export")
        node_id = gr.Textbox(label="node id")
        summary_json = gr.JSON(label="summary")
        drill_json = gr.JSON(label="node")
        export_file = gr.File(label="export")

    VIEW_OUTPUTS = [state, overlay, tree, evidence, prediction, table, breadcrumb, level]
    # Segmentation is heavy: one at a time. preprocess=False hands over the uploaded file's path
    # untouched (gr.Image would re-encode it and raise on non-images before we can explain).
    heavy: dict[str, Any] = dict(concurrency_id="segment", concurrency_limit=1, preprocess=False)
    # Clicks only read the stored hierarchy: many at once, no full-screen progress.
    light: dict[str, Any] = dict(
        concurrency_id="explore", concurrency_limit=8, show_progress="minimal", api_visibility="private"
    )

    segment_button.click(
        segment_ui, [input_image, checkpoint], VIEW_OUTPUTS, api_visibility="private", **heavy
    ).success(export_ui, state, export_button, **light)
    input_image.change(
        segment_or_clear, [input_image, checkpoint], VIEW_OUTPUTS, api_visibility="private", **heavy
    ).success(export_ui, state, export_button, **light)
    checkpoint.input(
        choose_checkpoint, checkpoint, None, api_visibility="private", concurrency_id="segment"
    ).success(
        segment_or_clear, [input_image, checkpoint], VIEW_OUTPUTS, api_visibility="private", **heavy
    ).success(export_ui, state, export_button, **light)

    overlay.select(on_image_click, state, VIEW_OUTPUTS, **light)
    tree.node_click(on_tree_click, state, VIEW_OUTPUTS, **light)
    breadcrumb.node_click(on_crumb_click, state, VIEW_OUTPUTS, **light)
    table.select(on_row_click, state, VIEW_OUTPUTS, **light)
    up_button.click(on_up, state, VIEW_OUTPUTS, **light)
    level.input(on_level, [state, level], VIEW_OUTPUTS, **light)

    api_segment.click(segment, [input_image, checkpoint], [state, summary_json], api_name="segment", **heavy)
    api_drill.click(
        drill, [node_id, state], [state, drill_json], api_name="drill",
        concurrency_id="explore", concurrency_limit=8,
    )
    api_export.click(export, state, export_file, api_name="export", concurrency_id="explore", concurrency_limit=8)

demo.queue(max_size=64)
LAUNCH_KWARGS: dict[str, Any] = dict(
    max_file_size=MAX_FILE_SIZE, css=CSS, theme=gr.themes.Soft(primary_hue="emerald"), footer_links=["api", "gradio"],
)

if __name__ == "__main__":
    demo.launch(**LAUNCH_KWARGS)
