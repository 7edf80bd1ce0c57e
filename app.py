"""hierseg web app: drop in a photo, point at a segment to see it, click it to reveal its parts.

Run ``python app.py`` (host and port come from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT; Hugging Face
Spaces sets them). The checkpoint is ``$HIERSEG_CHECKPOINT`` or the shipped ``checkpoints/default``;
official CAST releases can be picked in the app and are downloaded from the Hub once.

This file lays out the page and wires its events; everything behind them is the ``explorer``
package (handlers in ``explorer.events``, the page's scripts and styles in ``explorer/static``).
``build_demo(...)`` makes the app; importing this module loads no model. API endpoints (README,
"API"): ``/segment``, ``/granularity``, ``/drill``, ``/select`` and ``/export``; they keep the
segmentation in the session state, so call them from one ``gradio_client.Client``.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import gradio as gr
import plotly

from explorer import STATIC
from explorer.checkpoint_menu import available_checkpoints, offered_checkpoints, unlisted_note
from explorer.downloads import Downloads
from explorer.events import Explorer, Widgets
from explorer.granularity import STEP as GRANULARITY_STEP
from explorer.label_panel import LabelPanel
from explorer.views import EVIDENCE_TITLE
from explorer.pool import SegmenterPool, load_for_host
from hierseg import HiersegError
from hierseg.checkpoints import default_checkpoint as env_default_checkpoint

HERE = Path(__file__).resolve().parent
EXAMPLES = sorted(str(p.relative_to(HERE)) for p in (HERE / "examples").glob("*.jpg"))
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
MAX_FILE_MB = 25
MAX_FILE_SIZE = f"{MAX_FILE_MB}mb"
# Sessions keep their segmentation (a few MB of label maps) for an hour after their last event.
STATE_TTL_S = 3600
gr.set_static_paths([str(PLOTLY_JS)])

# Pointing and keys exist only with a mouse: a touch screen gets the words for tapping (app.css picks one).
INTRO = """# hierseg: photo → part-whole tree
Drop in a photo and CAST builds its part-whole tree.
<span class="pointer-only"><b>Point at</b> a segment to see it, <b>click</b> it (on the photo, the tree or the table)
to reveal its parts; Esc goes back up, the arrow keys step between siblings; <b>Ctrl/Shift-click</b> adds a
segment to the selection, taken as one region.</span>
<span class="touch-only"><b>Tap</b> a segment (on the photo, the tree or the table) to reveal its parts;
<b>Up</b> goes back; with <b>Add to selection</b> on, a tap adds a segment to the selection.</span>"""

LAUNCH_KWARGS: dict[str, Any] = dict(
    max_file_size=MAX_FILE_SIZE, css_paths=[STATIC / "app.css"], theme=gr.themes.Soft(primary_hue="emerald"),
    footer_links=["api", "gradio"],
)


def script(name: str) -> str:
    """The page script ``explorer/static/<name>``, as a ``gr.HTML`` runs it on load."""
    return (STATIC / name).read_text()


def build_demo(
    loader: Callable[[str], Any] = load_for_host,
    default_checkpoint: str | None = None,
    checkpoints: list[str] | None = None,
    preload: bool = False,
) -> gr.Blocks:
    """The app. ``loader`` maps a checkpoint name to a segmenter (tests pass their own; the default puts
    it where this machine runs it, ``explorer.pool``); nothing is loaded unless ``preload``, which loads
    the default at once (on ZeroGPU this must precede ``launch()``) and shows a notice if that fails.

    ``checkpoints`` are the names the app accepts (the API takes any of them); the list on the page
    offers those ``offered_checkpoints`` keeps: official releases that need a download say how
    large it is, and are left out when the Hub cannot be reached at start (a line under the list says
    so). A name can also be typed; one that cannot be loaded gets a message, as a picked one does.
    """
    default_checkpoint = default_checkpoint or env_default_checkpoint()
    checkpoints = list(checkpoints if checkpoints is not None else available_checkpoints())
    if default_checkpoint not in checkpoints:
        checkpoints.insert(0, default_checkpoint)
    offered = offered_checkpoints(checkpoints)
    pool = SegmenterPool(loader)
    startup_error = ""
    if preload:
        try:  # so the first photo does not pay for loading
            pool.get(default_checkpoint)
        except HiersegError as exc:
            startup_error = str(exc)
            print(f"hierseg app: no checkpoint could be loaded: {exc}", file=sys.stderr)

    with gr.Blocks(title="hierseg: part-whole trees from CAST", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(INTRO)
        if startup_error:
            gr.Markdown(
                f"> **No checkpoint could be loaded.** {startup_error}\n>\n> Set `HIERSEG_CHECKPOINT` to a "
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
                        [(label, name) for name, label in offered.items()], value=default_checkpoint,
                        label="Checkpoint", elem_id="checkpoint", scale=3, allow_custom_value=True,
                        info=unlisted_note(checkpoints, offered) or None,
                    )
                    run_button = gr.Button("Run again", elem_id="run-button", scale=1, min_width=100,
                                           interactive=False)
                # On a phone app.css puts it first in this column, before the photo input and the examples.
                with gr.Accordion("Display", open=False, elem_id="display"):
                    opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Colour opacity", elem_id="opacity")
                    outlines_only = gr.Checkbox(False, label="Outlines only", elem_id="outlines-only")
                    dim = gr.Checkbox(True, label="Dim outside the selection", elem_id="dim")
                examples = gr.Examples(
                    [[path] for path in EXAMPLES], inputs=[input_image], cache_examples=False,
                    example_labels=[Path(path).stem for path in EXAMPLES], label="Examples",
                )
                prediction = LabelPanel(num_top_classes=3, label="Whole image", elem_id="prediction")
            with gr.Column(scale=6, min_width=340, elem_id="result-col"):
                breadcrumb = gr.HTML("", js_on_load=script("node_click.js"), elem_id="breadcrumb")
                overlay = gr.Image(
                    show_label=False, format="png", interactive=False, elem_id="overlay",
                    buttons=["download", "fullscreen"],
                )
                caption = gr.HTML("", js_on_load=None, elem_id="caption")
                level_strip = gr.HTML("", js_on_load=script("strip.js"), elem_id="level-strip")
                with gr.Row():
                    with gr.Column(scale=0, min_width=170):
                        up_button = gr.Button("Up", size="sm", min_width=90, elem_id="up-button", interactive=False)
                        # Ctrl/Shift-click does the same with a mouse; this is the way on a touch screen.
                        adding = gr.Checkbox(False, label="Add to selection", elem_id="add-to-selection")
                    level = gr.Radio([], label="Level: colour the segments of", elem_id="level", scale=5)
            with gr.Column(scale=4, min_width=300, elem_id="tree-col"):
                # Above the tree it re-cuts; only for trees cut from a merge tree (explorer.granularity):
                # 0 is the coarsest cut, 1 the finest (app.css names the two ends).
                with gr.Row(elem_id="granularity-row"):
                    granularity = gr.Slider(0.0, 1.0, value=0.0, step=GRANULARITY_STEP, label="Granularity",
                                            elem_id="granularity", visible=False, scale=5)
                    granularity_reset = gr.Button("Reset", size="sm", scale=0, min_width=70, visible=False,
                                                  elem_id="granularity-reset")
                # tree.js draws the whole image's and the superpixels' columns half wide by clipping the plot.
                tree = gr.HTML(
                    None, html_template="<div class='tree-clip'><div class='tree-plot'></div></div>",
                    js_on_load=script("tree.js"), elem_id="tree",
                    head=f'<script src="/gradio_api/file={PLOTLY_JS}"></script>',
                )
                # The selected segment's evidence, the table and the export beside the photo, so a 1440x1000
                # screen shows them without scrolling.
                evidence = LabelPanel(num_top_classes=5, label=EVIDENCE_TITLE, elem_id="evidence")
                table = gr.HTML("", js_on_load=script("node_click.js"), elem_id="segments")
                export_button = gr.Button("Export selected segment + tree", elem_id="export", interactive=False)
                downloads = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="downloads",
                                    visible=False)
        # bridge.js also refuses a photo over the size limit before gradio sees it (gradio would empty the input).
        hover_bridge = gr.HTML(None, html_template=f"<div class='hover-bridge' data-max-mb='{MAX_FILE_MB}'></div>",
                               js_on_load=script("bridge.js"), elem_id="hover-bridge")
        click_targets = gr.HTML(None, html_template="<div class='click-targets'></div>", js_on_load=script("targets.js"),
                                elem_id="click-targets", visible="hidden")

        # Hidden twins for the API: plain arguments instead of click payloads.
        with gr.Row(visible=False):
            api_segment = gr.Button("segment")
            api_granularity = gr.Button("granularity")
            cut_height = gr.Number(None, label="coarsest cut height")
            api_drill = gr.Button("drill")
            api_select = gr.Button("select")
            node_ids = gr.Textbox(label="node ids, comma-separated")
            api_export = gr.Button("export")
            node_id = gr.Textbox(label="node id")
            summary = gr.JSON(label="summary")
            node_info = gr.JSON(label="node")
            tree_zip = gr.File(label="export")

        ui = Widgets(
            state=state, photo=input_image, run=run_button, overlay=overlay, tree=tree, click_targets=click_targets,
            evidence=evidence, prediction=prediction, table=table, breadcrumb=breadcrumb, caption=caption, level=level,
            up=up_button, export=export_button, hover_bridge=hover_bridge, level_strip=level_strip,
            granularity=granularity, granularity_reset=granularity_reset, checkpoint=checkpoint, downloads=downloads,
            summary=summary, node_info=node_info, tree_zip=tree_zip,
        )
        # Downloads live in gradio's cache: served in place, swept by delete_cache.
        explorer = demo.explorer = Explorer(pool, default_checkpoint, checkpoints, ui,
                                            Downloads(Path(demo.GRADIO_CACHE) / "hierseg"))
        # Segmentation is heavy: one at a time. preprocess=False hands over the uploaded file's path
        # untouched (gr.Image would re-encode it and raise on non-images before we can explain).
        heavy: dict[str, Any] = dict(concurrency_id="segment", concurrency_limit=1, preprocess=False)
        # Clicks only read the stored session: many at once, no full-screen progress.
        light: dict[str, Any] = dict(
            concurrency_id="explore", concurrency_limit=8, show_progress="minimal", api_visibility="private"
        )
        # A new photo's progress shows on the photo input, where it was dropped (and the one panel on
        # screen before a result).
        private: dict[str, Any] = dict(api_visibility="private", show_progress_on=input_image, **heavy)
        photo_inputs = [input_image, checkpoint, state]

        # A new photo arrives by upload (also paste and drop) or by an example; never on `change`, which
        # also fires when the handler itself puts a photo back and, after a result, twice per upload.
        input_image.upload(explorer.on_photo, photo_inputs, ui.photo_outputs, **private)
        examples.load_input_event.then(explorer.on_photo, photo_inputs, ui.photo_outputs, **private)
        run_button.click(explorer.on_run_again, photo_inputs, ui.segment_outputs, **private)
        checkpoint.input(explorer.on_checkpoint, [checkpoint, input_image, state], ui.segment_outputs, **private)

        overlay.select(explorer.on_image_click, [state, adding], ui.view_outputs, **light)
        hover_bridge.add_click(explorer.on_add_click, state, ui.view_outputs, **light)
        tree.node_click(explorer.on_tree_click, [state, adding], ui.view_outputs, **light)
        breadcrumb.node_click(explorer.on_node_click, [state, adding], ui.view_outputs, **light)
        table.node_click(explorer.on_node_click, [state, adding], ui.view_outputs, **light)
        level_strip.level_click(explorer.on_strip_click, state, ui.view_outputs, **light)
        hover_bridge.keyboard(explorer.on_key, state, ui.view_outputs, **light)
        hover_bridge.too_large(explorer.on_too_large, None, None, **light)
        up_button.click(explorer.on_up, state, ui.view_outputs, **light)
        level.input(explorer.on_level, [state, level], ui.view_outputs, **light)
        # Every drag step re-cuts the tree; always_last drops the steps a redraw fell behind on. The slider and
        # Reset share one queue of one, so a Reset pressed while steps are pending lands after them, not under them.
        cut: dict[str, Any] = {**light, "concurrency_id": "cut", "concurrency_limit": 1}
        granularity.input(explorer.on_granularity, [state, granularity], ui.cut_outputs, trigger_mode="always_last",
                          **cut)
        granularity_reset.click(explorer.on_granularity_reset, state, ui.cut_outputs, **cut)
        display_inputs = [state, opacity, outlines_only, dim]
        # input: every drag step, arrow key and typed digit (release would wait for the pointer or a blur);
        # always_last keeps only the newest of a burst.
        opacity.input(explorer.on_display, display_inputs, ui.view_outputs, trigger_mode="always_last", **light)
        outlines_only.input(explorer.on_display, display_inputs, ui.view_outputs, **light)
        dim.input(explorer.on_display, display_inputs, ui.view_outputs, **light)
        export_button.click(explorer.on_export, state, downloads, **light)

        api_segment.click(explorer.segment, [input_image, checkpoint], [state, summary], api_name="segment", **heavy)
        api_granularity.click(explorer.granularity, [cut_height, state], [state, summary], api_name="granularity",
                              concurrency_id="explore", concurrency_limit=8)
        api_drill.click(explorer.drill, [node_id, state], [state, node_info], api_name="drill",
                        concurrency_id="explore", concurrency_limit=8)
        api_select.click(explorer.select, [node_ids, state], [state, node_info], api_name="select",
                         concurrency_id="explore", concurrency_limit=8)
        api_export.click(explorer.export, state, tree_zip, api_name="export", concurrency_id="explore",
                         concurrency_limit=8)

    demo.queue(max_size=64)
    return demo


if __name__ == "__main__":
    build_demo(preload=True).launch(**LAUNCH_KWARGS)
