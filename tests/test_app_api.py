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

from hierseg import Hierarchy  # noqa: E402
from hierseg.checkpoints import CheckpointConfig, save_checkpoint  # noqa: E402
from hierseg.model import build_cast  # noqa: E402
from hierseg.superpixels import SEEDS_MOCO  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "chelsea.jpg"


def import_app(folder: Path) -> ModuleType:
    """Import app.py on the shipped default checkpoint when it exists, else on a small random one built in ``folder``.

    The app reads HIERSEG_CHECKPOINT once, at import; later imports in the same session reuse the module.
    """
    if "app" not in sys.modules:
        with pytest.MonkeyPatch.context() as patch:
            if not (REPO / "checkpoints" / "default" / "config.json").is_file():
                torch.manual_seed(0)  # the same random model, hence the same segments, every run
                model = build_cast("cast_micro", img_size=64, num_classes=3).eval()
                config = CheckpointConfig(model=model.config, superpixels=SEEDS_MOCO,
                                          class_names=["sky", "cat", "grass"], name="random-micro")
                patch.setenv("HIERSEG_CHECKPOINT", str(save_checkpoint(model, config, folder / "random-micro")))
            patch.syspath_prepend(str(REPO))
            import app  # noqa: F401
    return sys.modules["app"]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = import_app(tmp_path_factory.mktemp("checkpoint"))
    assert not app.STARTUP_ERROR, app.STARTUP_ERROR
    _, local_url, _ = app.demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, **app.LAUNCH_KWARGS)
    yield local_url
    app.demo.close()


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
    assert endpoints == {"/segment", "/drill", "/export"}


def test_segment_then_drill_down_to_a_leaf(client: Client) -> None:
    summary = client.predict(handle_file(str(EXAMPLE)), api_name="/segment")
    assert summary["image_size"] == list(Image.open(EXAMPLE).size)
    levels = [level["n_nodes"] for level in summary["levels"]]
    assert len(levels) >= 2 and levels == sorted(levels), "coarsest first"
    assert [child["node"] for child in summary["root"]["children"]] == [f"0:{i}" for i in range(levels[0])]
    assert sum(child["share"] for child in summary["root"]["children"]) == pytest.approx(1.0, abs=1e-3)
    assert len(summary["prediction"]) >= 1 and summary["timings_ms"]["model"] > 0

    node = "-1:0"
    for depth in range(len(levels)):
        info = client.predict(node, api_name="/drill")
        assert info["node"] == node and len(info["path"]) == depth + 1 and not info["is_leaf"]
        assert info["children"], "a non-leaf has children"
        assert all(child["node"].startswith(f"{depth}:") for child in info["children"])
        node = max(info["children"], key=lambda child: child["share"])["node"]
    leaf = client.predict(node, api_name="/drill")
    assert leaf["is_leaf"] and leaf["children"] == [] and leaf["top_classes"]


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
    assert client.predict("0:0", api_name="/drill")["node"] == "0:0"


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
    assert client.predict("0:0", api_name="/drill")["node"] == "0:0", "the session survives errors"


def test_official_release_offline_says_so_quickly(client: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from hierseg import checkpoints

    monkeypatch.setenv("HIERSEG_CACHE", str(tmp_path))  # nothing converted yet
    monkeypatch.setattr(checkpoints, "hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(Exception, match="offline"):
        client.predict(handle_file(str(EXAMPLE)), "official/moco-in1k-cast_small", api_name="/segment")
    assert client.predict(handle_file(str(EXAMPLE)), api_name="/segment")["image_size"] == [451, 300]
