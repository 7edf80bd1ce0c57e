"""The app's API through gradio_client against an in-process launch: segment, drill, export, bad input."""
from __future__ import annotations

import io
import os
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Iterator

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
from gradio_client import Client, handle_file  # noqa: E402  (after disabling analytics)

from hierseg import Hierarchy, load_segmenter  # noqa: E402
from hierseg.checkpoints import CheckpointConfig, save_checkpoint  # noqa: E402
from hierseg.model import build_cast  # noqa: E402
from hierseg.superpixels import SEEDS_MOCO  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "chelsea.jpg"


def app_module() -> ModuleType:
    """app.py as a module (importing it loads no model)."""
    if "app" not in sys.modules:
        sys.path.insert(0, str(REPO))
        import app  # noqa: F401
    return sys.modules["app"]


def checkpoint_for_tests(folder: Path) -> str:
    """The shipped default when it loads (whatever model it is today), else a small random CAST built in ``folder``."""
    try:
        load_segmenter("default")
        return "default"
    except Exception:  # noqa: BLE001  (the default is being replaced, or absent: any failure means "use our own")
        torch.manual_seed(0)  # the same random model, hence the same segments, every run
        model = build_cast("cast_micro", img_size=64, num_classes=3).eval()
        config = CheckpointConfig(model=model.config, superpixels=SEEDS_MOCO,
                                  class_names=["sky", "cat", "grass"], name="random-micro")
        return str(save_checkpoint(model, config, folder / "random-micro"))


def launch(demo) -> str:
    _, local_url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True,
                                  **app_module().LAUNCH_KWARGS)
    return local_url


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = app_module()
    checkpoint = checkpoint_for_tests(tmp_path_factory.mktemp("checkpoint"))
    demo = app.build_demo(default_checkpoint=checkpoint)
    yield launch(demo)
    demo.close()


@pytest.fixture
def client(url: str) -> Client:
    """A fresh client is a fresh session (its own gr.State)."""
    return Client(url, verbose=False)


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
    assert endpoints == {"/segment", "/refine", "/drill", "/export"}


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
        # Defect 2: a click always reveals something new; a node stands for its whole single-child chain.
        assert len(info["children"]) >= 2, info
        child_level = int(info["chain"][-1].split(":")[0]) + 1
        assert all(child["node"].startswith(f"{child_level}:") for child in info["children"])
        assert sum(child["share"] for child in info["children"]) == pytest.approx(info["share"], abs=2e-3)
        seen.append(node)
        node = max(info["children"], key=lambda child: child["share"])["node"]
    assert info["children"] == [] and info["top_classes"] and info["chain"][-1].startswith(f"{len(levels) - 1}:")


def test_drill_never_answers_one_child(client: Client) -> None:
    """Every node of every level: /drill lists zero or at least two children (defect 2)."""
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
    assert name in str(error.value), "the message names the person's file, not a temp path"
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


def test_sessions_are_isolated(url: str, tmp_path: Path) -> None:
    first, second = Client(url, verbose=False), Client(url, verbose=False)
    first.predict(handle_file(str(EXAMPLE)), api_name="/segment")
    wide = _file(tmp_path, "wide.png", _encoded(Image.fromarray(_gradient((200, 50))), "PNG"))
    second.predict(handle_file(wide), api_name="/segment")
    assert first.predict("-1:0", api_name="/drill")["bbox"] == [0, 0, 451, 300]
    assert second.predict("-1:0", api_name="/drill")["bbox"] == [0, 0, 200, 50]
    with pytest.raises(Exception, match="Segment a photo first"):
        Client(url, verbose=False).predict("0:0", api_name="/drill")


def test_unknown_nodes_and_checkpoints_are_refused(client: Client) -> None:
    client.predict(handle_file(str(EXAMPLE)), api_name="/segment")
    with pytest.raises(Exception, match="no node 9:9"):
        client.predict("9:9", api_name="/drill")
    with pytest.raises(Exception, match="Unknown checkpoint"):
        client.predict(handle_file(str(EXAMPLE)), "/etc", api_name="/segment")
    assert client.predict("-1:0", api_name="/drill")["node"] == "-1:0", "the session survives errors"


def test_official_release_offline_says_so_quickly(client: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from hierseg import checkpoints

    monkeypatch.setenv("HIERSEG_CACHE", str(tmp_path))  # nothing converted yet
    monkeypatch.setattr(checkpoints, "hub_reachable", lambda timeout=3.0: False)
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


def test_a_repeated_or_cleared_photo_keeps_the_exploration(tmp_path: Path) -> None:
    """Defect 7: the same file again (a second change event) is not re-segmented and keeps the
    selection; clearing the input (the Upload icon, before the picker opens) keeps the result."""
    segmenter = _CountingSegmenter()
    explorer = app_module().Explorer(lambda name: segmenter, "fake", ["fake"])
    explorer.cache_dir = tmp_path
    photo = {"path": str(EXAMPLE), "orig_name": "chelsea.jpg"}
    first = explorer.on_photo(photo, "fake", None)
    state = first[0]
    assert segmenter.calls == 1 and state.name == "chelsea"
    assert Path(first[1]).name == "chelsea.png", "the overlay downloads under the photo's name (defect 8)"
    drilled = explorer.on_node_click(state, type("Event", (), {"node": "0:1"})())[0]
    skipped = gr_skip_type()
    for again in (explorer.on_photo(photo, "fake", drilled), explorer.on_photo(None, "fake", drilled)):
        assert all(isinstance(value, skipped) for value in again), "nothing on screen changes"
    assert segmenter.calls == 1
    other = _file(tmp_path, "other.png", _encoded(Image.fromarray(_gradient((90, 70))), "PNG"))
    explorer.on_photo({"path": other, "orig_name": "other.png"}, "fake", drilled)
    assert segmenter.calls == 2, "a different file is segmented"


def gr_skip_type() -> type:
    import gradio as gr

    return type(gr.skip())
