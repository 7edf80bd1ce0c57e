"""The app's API through gradio_client against an in-process launch (``app_url`` in conftest): segment, drill, export, bad input."""
from __future__ import annotations

import importlib.util
import io
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from conftest import EXAMPLE, REPO
from gradio_client import Client, handle_file
from PIL import Image

from hierseg import Hierarchy

pytestmark = pytest.mark.slow  # a model run per call, through a real server


@pytest.fixture
def client(app_url: str) -> Client:
    """A fresh client is a fresh session (its own gr.State)."""
    return Client(app_url, verbose=False)


def _noise(size: tuple[int, int]) -> np.ndarray:
    width, height = size
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _file(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def test_only_the_documented_endpoints_are_public(client: Client) -> None:
    endpoints = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert endpoints == {"/segment", "/granularity", "/drill", "/select", "/export"}


def test_the_app_offers_no_refine(client: Client) -> None:
    """Refinement left the app (it did not help: docs/eval/refine/results.md); ``Segmenter.refine`` stays in the
    library. The page the server sends has no Refine button or Before/Refined toggle, and no event, hidden or
    not, is called refine."""
    config = client.config
    assert "/refine" not in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert not [dep["api_name"] for dep in config["dependencies"] if "refine" in str(dep.get("api_name")).lower()]
    words = [" ".join(str(component.get("props", {}).get(key, "")) for key in ("value", "label", "elem_id"))
             for component in config["components"]]
    assert not [text for text in words if "refine" in text.lower()], "a refine control is on the page"


def test_granularity_recuts_the_tree_and_keeps_the_selection(client: Client) -> None:
    """Every answer states where the levels are cut; /granularity re-cuts there and keeps a drilled segment
    selected (or refuses, for a checkpoint with fixed levels)."""
    summary = client.predict(handle_file(str(EXAMPLE)), api_name="/segment")
    stated = summary["granularity"]
    first = summary["root"]["children"][0]["node"]
    assert client.predict(first, api_name="/drill")["granularity"] == stated
    if stated is None:
        with pytest.raises(Exception, match="fixed levels"):
            client.predict(0.1, api_name="/granularity")
        return
    low, high = stated["height_range"]
    assert low < stated["coarsest_height"] == stated["cut_heights"][0] <= high
    finer = client.predict(low, api_name="/granularity")
    assert finer["granularity"]["coarsest_height"] == pytest.approx(low)
    assert finer["levels"][0]["n_nodes"] > summary["levels"][0]["n_nodes"]
    assert finer["selected"] != "-1:0", "the drilled segment's largest piece, not the whole image"
    back = client.predict(stated["coarsest_height"], api_name="/granularity")
    assert back["selected"] == first and back["levels"] == summary["levels"], "the first cut again, the same segment"


def test_segment_then_drill_down_to_a_leaf(client: Client) -> None:
    summary = client.predict(handle_file(str(EXAMPLE)), api_name="/segment")
    assert summary["image_size"] == list(Image.open(EXAMPLE).size)
    levels = [level["n_nodes"] for level in summary["levels"]]
    assert len(levels) >= 2 and levels == sorted(levels), "coarsest first"
    assert sum(child["share"] for child in summary["root"]["children"]) == pytest.approx(1.0, abs=1e-3)
    assert len(summary["prediction"]) >= 1 and summary["timings_ms"]["model"] > 0

    node, seen = "-1:0", []
    while True:
        info = client.predict(node, api_name="/drill")
        assert info["node"] == node and info["path"][-1] == node and info["path"][:-1] == seen
        assert info["chain"][0] == node
        if info["is_leaf"]:
            break
        # A click always reveals something new; a node stands for its whole single-child chain.
        assert len(info["children"]) >= 2, info
        child_level = int(info["chain"][-1].split(":")[0]) + 1
        assert all(child["node"].startswith(f"{child_level}:") for child in info["children"])
        assert sum(child["share"] for child in info["children"]) == pytest.approx(info["share"], abs=2e-3)
        seen.append(node)
        node = max(info["children"], key=lambda child: child["share"])["node"]
    assert info["children"] == [] and info["top_classes"] and info["chain"][-1].startswith(f"{len(levels) - 1}:")


def test_drill_never_answers_one_child(client: Client) -> None:
    """Every node of every level: /drill lists zero or at least two children."""
    summary = client.predict(handle_file(str(EXAMPLE)), api_name="/segment")
    for level, entry in enumerate(summary["levels"][:-1]):
        for index in range(entry["n_nodes"]):
            info = client.predict(f"{level}:{index}", api_name="/drill")
            assert len(info["children"]) != 1, info
            assert f"{level}:{index}" in info["chain"], "asking for any node of a chain answers the chain"


def test_export_holds_the_tree_and_lossless_label_maps(client: Client, tmp_path: Path) -> None:
    summary = client.predict(handle_file(str(EXAMPLE)), api_name="/segment")
    archive = client.predict(api_name="/export")
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
        zipped.extractall(tmp_path)
    assert "tree.json" in names and sum(name.endswith(".png") for name in names) == len(summary["levels"])
    tree = Hierarchy.load(tmp_path)
    assert tree.image_size == tuple(summary["image_size"])
    assert [tree.n_nodes(level) for level in range(tree.n_levels)] == [lvl["n_nodes"] for lvl in summary["levels"]]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        pytest.param("notes.jpg", b"this is not an image at all", "not an image", id="not-an-image"),
        pytest.param("empty.png", b"", "empty", id="empty"),
        pytest.param("cut.jpg", _encoded(Image.fromarray(_noise((400, 300))), "JPEG")[:20_000], "truncated", id="truncated"),
    ],
)
def test_bad_files_get_a_clear_error_and_the_app_keeps_serving(
    client: Client, tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    with pytest.raises(Exception, match=message) as error:
        client.predict(handle_file(_file(tmp_path, name, data)), api_name="/segment")
    assert f"'{name}'" in str(error.value), "the message names the person's file, not a temp path"
    assert client.predict(handle_file(str(EXAMPLE)), api_name="/segment")["image_size"] == [451, 300]


def test_uploads_above_the_size_limit_are_refused(client: Client, tmp_path: Path) -> None:
    big = _file(tmp_path, "big.png", b"\0" * (26 * 1024 * 1024))
    with pytest.raises(Exception, match="(?i)size|large|413"):
        client.predict(handle_file(big), api_name="/segment")


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    return _encoded(Image.new("RGB", (120, 60), (30, 140, 200)), "JPEG", exif=exif)


def _gradient(size: tuple[int, int]) -> np.ndarray:
    width, height = size
    return (np.add.outer(np.arange(height), np.arange(width)) % 256).astype(np.uint8)


@pytest.mark.parametrize(
    ("name", "data", "size"),
    [
        ("gray.png", _encoded(Image.fromarray(_gradient((90, 70))), "PNG"), [90, 70]),
        ("rgba.png", _encoded(Image.new("RGBA", (80, 64), (10, 200, 10, 120)), "PNG"), [80, 64]),
        ("palette.gif", _encoded(Image.fromarray(_gradient((70, 50))).convert("P"), "GIF"), [70, 50]),
        ("deep.png", _encoded(Image.fromarray(_gradient((64, 48)).astype(np.uint16) * 257), "PNG"), [64, 48]),
        ("cmyk.jpg", _encoded(Image.new("CMYK", (72, 40), (0, 120, 200, 10)), "JPEG"), [72, 40]),
        ("rotated.jpg", _exif_rotated(), [60, 120]),
        ("tiny.png", _encoded(Image.new("RGB", (12, 9), (250, 250, 0)), "PNG"), [12, 9]),
        ("huge.jpg", _encoded(Image.fromarray(np.stack([_gradient((3000, 1500))] * 3, -1)), "JPEG"), [2048, 1024]),
    ],
)
def test_every_kind_of_photo_is_segmented(client: Client, tmp_path: Path, name: str, data: bytes, size: list[int]) -> None:
    summary = client.predict(handle_file(_file(tmp_path, name, data)), api_name="/segment")
    assert summary["image_size"] == size
    first = (summary["root"]["children"] or [summary["root"]])[0]["node"]
    assert client.predict(first, api_name="/drill")["node"] == first


def test_sessions_are_isolated(app_url: str, tmp_path: Path) -> None:
    first, second = Client(app_url, verbose=False), Client(app_url, verbose=False)
    first.predict(handle_file(str(EXAMPLE)), api_name="/segment")
    wide = _file(tmp_path, "wide.png", _encoded(Image.fromarray(_gradient((200, 50))), "PNG"))
    second.predict(handle_file(wide), api_name="/segment")
    assert first.predict("-1:0", api_name="/drill")["bbox"] == [0, 0, 451, 300]
    assert second.predict("-1:0", api_name="/drill")["bbox"] == [0, 0, 200, 50]
    with pytest.raises(Exception, match="Segment a photo first"):
        Client(app_url, verbose=False).predict("0:0", api_name="/drill")


def test_unknown_nodes_and_checkpoints_are_refused(client: Client) -> None:
    client.predict(handle_file(str(EXAMPLE)), api_name="/segment")
    with pytest.raises(Exception, match="no node 9:9"):
        client.predict("9:9", api_name="/drill")
    with pytest.raises(Exception, match="Unknown checkpoint"):
        client.predict(handle_file(str(EXAMPLE)), "/etc", api_name="/segment")
    assert client.predict("-1:0", api_name="/drill")["node"] == "-1:0", "the session survives errors"


def test_a_checkpoints_named_quality_is_served_by_name(client: Client) -> None:
    """The list offers ``default@fine`` after ``default``; picked by name (here through the API), the photo is
    segmented at that quality: the counts are the library's for ``load_segmenter("default@fine")``."""
    from hierseg import load_segmenter

    summary = client.predict(handle_file(str(EXAMPLE)), "default@fine", api_name="/segment")
    fine = load_segmenter("default", device="cpu", quality="fine")(EXAMPLE)
    standard = load_segmenter("default", device="cpu")(EXAMPLE)
    counts = [[h.n_nodes(level) for level in range(h.n_levels)] for h in (fine, standard)]
    assert summary["checkpoint"] == "default@fine" and counts[0] != counts[1], counts  # the quality shows on this photo
    assert [level["n_nodes"] for level in summary["levels"]] == counts[0]


def test_expected_errors_are_one_log_line_and_heights_out_of_range_are_refused(client: Client, capfd, caplog) -> None:
    """/granularity(99) was accepted though the published range is [0.015, 0.259]; every expected error printed
    a full traceback in the server log."""
    summary = client.predict(handle_file(str(EXAMPLE)), api_name="/segment")
    if summary["granularity"] is None:
        pytest.skip("this checkpoint has fixed levels: no granularity")
    low, high = summary["granularity"]["height_range"]
    capfd.readouterr()
    caplog.clear()
    for height in (99, high * 1.5, low / 2, 0):
        with pytest.raises(Exception, match=r"outside this photo's range \["):
            client.predict(height, api_name="/granularity")
    with pytest.raises(Exception, match="no node 9:9"):
        client.predict("9:9", api_name="/drill")
    assert client.predict(low, api_name="/granularity")["granularity"]["coarsest_height"] == low, "the range's ends"
    assert "Traceback" not in capfd.readouterr().err, "an expected error printed a traceback"
    lines = [record.getMessage() for record in caplog.records if record.name == "hierseg.app"]
    assert len(lines) == 5 and all("\n" not in line for line in lines), lines
    assert sum(line.startswith("Granularity: merge height") for line in lines) == 4 and "no node 9:9" in lines[-1]


def test_the_readmes_api_example_states_what_the_app_answers(app_url: str, app_checkpoint: str) -> None:
    """The block between the api-example markers in README.md, run against the app, prints exactly the
    lines it states (``tools/api_example.py --write`` rewrites them)."""
    if app_checkpoint != "default":
        pytest.skip("the README's example is of the shipped default checkpoint, which does not load here")
    spec = importlib.util.spec_from_file_location("api_example", REPO / "tools" / "api_example.py")
    api_example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(api_example)
    block = api_example.example_block((REPO / "README.md").read_text(encoding="utf-8"))
    assert len(api_example.stated(block)) >= 5
    printed = api_example.run(block, app_url)
    assert printed == api_example.stated(block), "README.md's API example is stale: python tools/api_example.py --write"


def test_official_release_offline_says_so_quickly(client: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from hierseg.checkpoints import hub

    monkeypatch.setenv("HIERSEG_CACHE", str(tmp_path))  # nothing converted yet
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(Exception, match="offline"):
        client.predict(handle_file(str(EXAMPLE)), "official/moco-in1k-cast_small", api_name="/segment")
    assert client.predict(handle_file(str(EXAMPLE)), api_name="/segment")["image_size"] == [451, 300]


class _CountingSegmenter:
    """Segments anything into a fixed two-level tree and counts its calls (no model)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, rgb: np.ndarray) -> Hierarchy:
        self.calls += 1
        height, width = rgb.shape[:2]
        cols = np.broadcast_to(np.arange(width), (height, width))
        quarters = (cols * 4 // width).astype(np.int32)
        halves = quarters // 2
        return Hierarchy([halves, quarters], [np.zeros(0, np.int32), np.array([0, 0, 1, 1])],
                         [np.full((2, 1), 1.0, np.float32), np.full((4, 1), 1.0, np.float32)], ["thing"],
                         np.ones(1, np.float32))


def test_a_repeated_or_cleared_photo_keeps_the_exploration(app: ModuleType, tmp_path: Path) -> None:
    """The same file again (a second change event) is not re-segmented and keeps the selection;
    clearing the input (the Upload icon, before the picker opens) keeps the result."""
    import gradio as gr

    from explorer.downloads import Downloads

    segmenter = _CountingSegmenter()
    demo = app.build_demo(loader=lambda name: segmenter, default_checkpoint="fake", checkpoints=["fake"])
    explorer, ui = demo.explorer, demo.explorer.ui
    explorer.downloads = Downloads(tmp_path)
    photo = {"path": str(EXAMPLE), "orig_name": "chelsea.jpg"}
    first = explorer.on_photo(photo, "fake", None)
    state = first[ui.state]
    assert segmenter.calls == 1 and state.name == "chelsea.jpg"
    assert Path(first[ui.overlay]).name == "chelsea.png", "the overlay downloads under the photo's name"
    assert set(first) == set(ui.segment_outputs), "a new photo updates every panel"
    drilled = explorer.on_node_click(state, type("Event", (), {"node": "0:1"})())[ui.state]
    for again in (explorer.on_photo(photo, "fake", drilled), explorer.on_photo(None, "fake", drilled)):
        assert again == gr.skip(), "nothing on screen changes"
    assert segmenter.calls == 1
    other = _file(tmp_path, "other.png", _encoded(Image.fromarray(_gradient((90, 70))), "PNG"))
    explorer.on_photo({"path": other, "orig_name": "other.png"}, "fake", drilled)
    assert segmenter.calls == 2, "a different file is segmented"


def test_a_photo_that_cannot_be_segmented_leaves_the_input_showing_the_result(app: ModuleType, tmp_path: Path) -> None:
    """A failed upload takes the broken file back out of the input and puts the photo on screen back."""
    from explorer.downloads import Downloads

    demo = app.build_demo(loader=lambda name: _CountingSegmenter(), default_checkpoint="fake", checkpoints=["fake"])
    explorer, ui = demo.explorer, demo.explorer.ui
    explorer.downloads = Downloads(tmp_path)
    broken = {"path": _file(tmp_path, "broken.jpg", b"not an image"), "orig_name": "broken.jpg"}
    with pytest.warns(UserWarning):
        assert explorer.on_photo(broken, "fake", None) == {ui.photo: None}, "nothing to put back: emptied"
    state = explorer.on_photo({"path": str(EXAMPLE), "orig_name": "chelsea.jpg"}, "fake", None)[ui.state]
    with pytest.warns(UserWarning):
        assert explorer.on_photo(broken, "fake", state) == {ui.photo: str(EXAMPLE)}


def test_offline_the_checkpoint_list_says_why_the_releases_are_missing(app: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    """No Hub at start: only the local checkpoint is listed, and a line under the list says why; with the Hub
    (faked: no network), every release is listed and no line is shown."""
    from explorer import checkpoint_menu
    from hierseg.checkpoints import OFFICIAL_RELEASES, hub

    monkeypatch.setenv("HIERSEG_CACHE", str(tmp_path))  # no release converted
    monkeypatch.setattr(hub, "in_hub_cache", lambda repo, filename: False)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: False)
    names = ["fake", *OFFICIAL_RELEASES]
    offline = app.build_demo(loader=lambda name: _CountingSegmenter(), default_checkpoint="fake",
                             checkpoints=names).explorer.ui.checkpoint
    assert [value for _, value in offline.choices] == ["fake"]
    assert offline.info.startswith("Hub unreachable") and "only local checkpoints" in offline.info
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(checkpoint_menu, "release_download_size", lambda name, timeout=3.0: 88_000_000)
    online = app.build_demo(loader=lambda name: _CountingSegmenter(), default_checkpoint="fake",
                            checkpoints=names).explorer.ui.checkpoint
    assert [value for _, value in online.choices] == names and not online.info


def test_a_typed_checkpoint_that_cannot_be_loaded_gets_a_message(app: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    """The list takes a typed name (else the page drops it without a word); a release typed while the Hub is
    unreachable, or an unknown name, is answered by one message and the list goes back to the checkpoint in use."""
    from hierseg.checkpoints import hub

    monkeypatch.setenv("HIERSEG_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(hub, "in_hub_cache", lambda repo, filename: False)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: False)
    release = "official/moco-in1k-cast_small"
    demo = app.build_demo(default_checkpoint="default", checkpoints=["default", release])  # the library's loader
    explorer, ui = demo.explorer, demo.explorer.ui
    assert ui.checkpoint.allow_custom_value
    for typed, reason in ((release, "cannot be reached from this machine \\(offline\\)"),
                          ("my-typo", "Unknown checkpoint 'my-typo'")):
        with pytest.warns(UserWarning, match=f"{reason}.* Still using default"):
            answer = explorer.on_checkpoint(typed, None, None)
        assert answer[ui.checkpoint].value == "default"


def test_select_takes_two_segments_as_one_region(client: Client) -> None:
    """/select: two of the whole image's parts as one region, named from their union's evidence; overlapping
    segments are refused."""
    summary = client.predict(handle_file(str(EXAMPLE)), api_name="/segment")
    first, second = summary["root"]["children"][:2]
    both = client.predict(f"{first['node']}, {second['node']}", api_name="/select")
    assert both["nodes"] == [first["node"], second["node"]] and both["names"] == [first["name"], second["name"]]
    assert both["share"] == pytest.approx(first["share"] + second["share"], abs=2e-4)
    assert both["top_classes"] and both["top_classes"] != client.predict(first["node"], api_name="/drill")["top_classes"]
    part = client.predict(first["node"], api_name="/drill")["children"][0]["node"]
    with pytest.raises(Exception, match="disjoint"):
        client.predict(f"{first['node']},{part}", api_name="/select")
