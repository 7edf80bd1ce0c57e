"""hierseg segment-dataset: stored trees equal the Segmenter's, ranks split the work without changing a byte,
a SIGKILLed run resumes to the same trees, bad photos become error rows, mixed settings are refused."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pyarrow")

from hierseg.dataset import RunSettings, open_results, segment_dataset  # noqa: E402
from hierseg.dataset.claims import try_claim  # noqa: E402
from hierseg.dataset.fingerprint import FingerprintMismatch  # noqa: E402
from hierseg.dataset.launch import rank_from_env  # noqa: E402
from hierseg.dataset.runner import shard_order  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BROKEN = "nested/deeper/broken.jpg"


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four examples at 160 px in nested folders, one twice (two names), and a file that is not a photo."""
    from PIL import Image

    root = tmp_path_factory.mktemp("photos")
    names = sorted((REPO / "examples").glob("*.jpg"))
    for i, path in enumerate(names):
        folder = root / ("nested" if i % 2 else "") / ("deeper" if i == 3 else "")
        folder.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as image:
            image.thumbnail((160, 160))
            image.save(folder / path.name)
    (root / "nested" / "deeper" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return root


@pytest.fixture(scope="module")
def one_process(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("one") / "out"
    import torch

    threads = torch.get_num_threads()
    segment_dataset(RunSettings(photos, out, device="cpu", batch_size=2, shard_size=2, workers=1, segments=True,
                                progress=False))
    torch.set_num_threads(threads)
    return out


def _command(photos: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hierseg", "segment-dataset", str(photos), str(out), "--device", "cpu",
            "--batch-size", "2", "--workers", "1", "--quiet", *extra]


def _env(rank: int, world: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "SLURM"))}
    return {**env, "PYTHONPATH": str(REPO), "RANK": str(rank), "WORLD_SIZE": str(world), "OMP_NUM_THREADS": "1"}


def _trees(out: Path) -> dict[str, object]:
    results = open_results(out)
    return {key: results.hierarchy(key) for key in results.index[results.index["status"] == "ok"]["key"]}


@pytest.fixture
def one_thread():
    """Torch's thread count as segment-dataset sets it: float sums depend on it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_stored_trees_equal_the_segmenters(one_process: Path, photos: Path, one_thread: None) -> None:
    from hierseg import load_segmenter

    segmenter = load_segmenter(device="cpu")
    results = open_results(one_process)
    index = results.index
    assert sorted(index["path"]) == sorted(p.relative_to(photos).as_posix() for p in photos.rglob("*.jpg"))
    ok = index[index["status"] == "ok"]
    assert len(ok) == 4
    for key, path in zip(ok["key"], ok["path"]):
        stored, direct = results.hierarchy(key), segmenter(photos / path)
        # Exact: label maps, parents, superpixel ids, the merge tree, its cut, the prediction.
        assert stored.n_levels == direct.n_levels
        for a, b in zip(stored.label_maps + stored.parents, direct.label_maps + direct.parents):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(stored.superpixel_ids, direct.superpixel_ids)
        assert stored.merge_tree == direct.merge_tree and stored.tree_config == direct.tree_config
        np.testing.assert_array_equal(stored.prediction, direct.prediction)
        assert stored.meta == {k: v for k, v in direct.meta.items() if k != "timings_ms"}
        # Top-5 evidence exact (float16, as the Hierarchy holds it), the rest of each row's mass spread below it.
        for level in range(direct.n_levels):
            for node in direct.nodes(level):
                assert stored.top_classes(node, 5) == direct.top_classes(node, 5)
        # Any granularity without the model: the stored tree re-cuts as the Segmenter's does.
        height = direct.cut_heights[0] * 1.7
        for a, b in zip(stored.recut(height).label_maps, direct.recut(height).label_maps):
            np.testing.assert_array_equal(a, b)
        assert ok[ok["key"] == key]["segments_per_level"].iloc[0].tolist() == [direct.n_nodes(l) for l in range(direct.n_levels)]


def test_a_broken_photo_is_an_error_row(one_process: Path) -> None:
    index = open_results(one_process).index
    assert len(index) == 5 and index["key"].is_unique
    broken = index[index["path"] == BROKEN].iloc[0]
    assert broken["status"] == "error" and broken["error"].startswith("Cannot load")
    status = open_results(one_process).status()
    assert (status["ok"], status["error"], status["pending"], status["shards_done"]) == (4, 1, 0, 3)
    assert status["bytes_per_photo"] <= 64 * 1024


def test_a_rerun_skips_finished_shards_and_other_settings_are_refused(one_process: Path, photos: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in (one_process / "shards").iterdir()}
    assert segment_dataset(RunSettings(photos, one_process, device="cpu", shard_size=2, progress=False)) == []
    assert before == {p.name: p.stat().st_mtime_ns for p in (one_process / "shards").iterdir()}
    with pytest.raises(FingerprintMismatch, match="evidence"):
        segment_dataset(RunSettings(photos, one_process, device="cpu", shard_size=2, evidence="full", progress=False))
    with pytest.raises(FingerprintMismatch, match="shard_size"):
        segment_dataset(RunSettings(photos, one_process, device="cpu", shard_size=3, progress=False))


@pytest.mark.slow
def test_two_processes_write_what_one_writes(one_process: Path, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "two"
    ranks = [subprocess.Popen(_command(photos, out, "--shard-size", "2", "--segments"), env=_env(rank, 2))
             for rank in range(2)]
    assert [p.wait(timeout=600) for p in ranks] == [0, 0]
    for name in ("shards", "index", "segments"):
        mine, theirs = sorted((out / name).iterdir()), sorted((one_process / name).iterdir())
        assert [p.name for p in mine] == [p.name for p in theirs]
        for a, b in zip(mine, theirs):
            assert a.read_bytes() == b.read_bytes(), a
    done = [json.loads(p.read_text()) for p in sorted((out / "done").iterdir())]
    assert sum(d["photos"] for d in done) == 5


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_trees(one_process: Path, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    ranks = [subprocess.Popen(_command(photos, out, "--shard-size", "1"), env=_env(rank, 2), start_new_session=True)
             for rank in range(2)]
    deadline = time.time() + 600
    while not list((out / "done").glob("*.json")) and time.time() < deadline:
        time.sleep(0.05)
    for p in ranks:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    done_at_kill = len(list((out / "done").glob("*.json")))
    assert 1 <= done_at_kill < 5, "the kill should land mid-run"
    assert list((out / "claims").glob("*.claim")), "killed ranks leave their claims behind"
    again = [subprocess.Popen(_command(photos, out, "--shard-size", "1"), env=_env(rank, 2)) for rank in range(2)]
    assert [p.wait(timeout=600) for p in again] == [0, 0]
    index = open_results(out).index
    assert len(index) == 5 and index["key"].is_unique and set(index["status"]) == {"ok", "error"}
    members = [name for tar in (out / "shards").glob("*.tar") for name in _tar_names(tar)]
    assert len(members) == len(set(members)) == 8  # two members per segmented photo, none twice
    assert not list(out.rglob("*.tmp")) and not list((out / "claims").iterdir())
    resumed, uninterrupted = _trees(out), _trees(one_process)
    assert resumed.keys() == uninterrupted.keys()
    assert all(resumed[key] == uninterrupted[key] for key in resumed)


def _tar_names(path: Path) -> list[str]:
    import tarfile

    with tarfile.open(path) as tar:
        return tar.getnames()


def test_ranks_cover_every_shard_once_first_their_own() -> None:
    for world in (1, 2, 3, 8):
        orders = [shard_order(10, rank, world) for rank in range(world)]
        for rank, order in enumerate(orders):
            assert sorted(order) == list(range(10))
            own = [s for s in range(10) if s % world == rank]
            assert order[: len(own)] == own


def test_rank_from_the_launchers_environment() -> None:
    assert rank_from_env({}) == (0, 1, "single process")
    assert rank_from_env({"RANK": "3", "WORLD_SIZE": "4", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"})[:2] == (3, 4)
    assert rank_from_env({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "5", "SLURM_ARRAY_TASK_MIN": "1"})[:2] == (4, 5)
    assert rank_from_env({"SLURM_PROCID": "1", "SLURM_NTASKS": "2"})[:2] == (1, 2)
    with pytest.raises(ValueError, match="outside"):
        rank_from_env({"RANK": "2", "WORLD_SIZE": "2"})


def test_a_dead_processs_claim_is_taken_over_a_live_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "shard-000000.claim"
    held = try_claim(path, stale_after=600)
    assert held is not None and try_claim(path, stale_after=600) is None  # we are alive
    dead = subprocess.Popen(["true"])
    dead.wait()
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "pid": dead.pid}))
    assert try_claim(path, stale_after=600) is not None
    other_host = {**record, "host": "elsewhere"}
    path.write_text(json.dumps(other_host))
    assert try_claim(path, stale_after=600) is None
    os.utime(path, (time.time() - 700, time.time() - 700))
    assert try_claim(path, stale_after=600) is not None


def test_cli_reports_bad_input_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hierseg.cli import main

    assert main(["segment-dataset", str(tmp_path / "missing"), str(tmp_path / "out"), "--device", "cpu", "--quiet"]) == 2
    assert "neither a folder of photos nor a text file" in capsys.readouterr().err
    assert main(["segment-dataset", str(tmp_path), str(tmp_path / "out2"), "--evidence", "most", "--quiet"]) == 2
    assert "topK" in capsys.readouterr().err


# ---------------------------------------------------------------------- exporters
def test_compressed_rle_round_trips_and_matches_pycocotools() -> None:
    from hierseg.dataset.exporters import compress_counts, decompress_counts
    from hierseg.export import coco_rle

    rng = np.random.default_rng(0)
    for shape in [(7, 5), (40, 33), (1, 1)]:
        mask = rng.random(shape) < rng.random()
        counts = coco_rle(mask)["counts"]
        assert decompress_counts(compress_counts(counts)) == counts
    counts = [5, 100000, 3, 1, 70000, 2]  # large and negative differences
    assert decompress_counts(compress_counts(counts)) == counts
    mask_api = pytest.importorskip("pycocotools.mask")
    mask = np.asfortranarray(rng.random((31, 17)) < 0.4)
    assert mask_api.encode(mask.astype(np.uint8))["counts"].decode() == compress_counts(coco_rle(mask)["counts"])


def test_coco_export_masks_are_the_stored_trees(one_process: Path, tmp_path: Path) -> None:
    from hierseg.dataset.exporters import decompress_counts, export_coco_dataset
    from hierseg.export import decode_coco_rle

    results = open_results(one_process)
    document = json.loads(export_coco_dataset(results, tmp_path / "coco.json").read_text())
    assert len(document["images"]) == 4
    image = document["images"][1]
    tree = results.hierarchy(image["hierseg_key"])
    mine = [a for a in document["annotations"] if a["image_id"] == image["id"]]
    assert len(mine) == sum(tree.n_nodes(level) for level in range(tree.n_levels))
    for annotation in mine[:: max(1, len(mine) // 20)]:
        node = annotation["hierseg"]["node"]
        rle = {**annotation["segmentation"], "counts": decompress_counts(annotation["segmentation"]["counts"])}
        np.testing.assert_array_equal(decode_coco_rle(rle), tree.mask(node))
        assert annotation["hierseg"]["parent"] == str(tree.parent(node))


def test_hf_parquet_rows_decode_to_the_stored_trees(one_process: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from hierseg.dataset.exporters import export_hf_parquet
    from hierseg.dataset.record import SUPERPIXELS, TREE, decode

    results = open_results(one_process)
    table = pq.read_table(export_hf_parquet(results, tmp_path / "data.parquet"))
    assert json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]["superpixels"] == {"_type": "Image"}
    rows = table.to_pylist()
    assert len(rows) == 4
    for row in rows:
        tree = decode({SUPERPIXELS: row["superpixels"]["bytes"], TREE: row["tree"]}, results.class_names)
        assert tree == results.hierarchy(row["key"])


def test_segments_table_answers_part_under_whole_queries(one_process: Path) -> None:
    results = open_results(one_process)
    segments = results.segments()
    key = results.index[results.index["status"] == "ok"]["key"].iloc[0]
    tree = results.hierarchy(key)
    mine = segments[segments["key"] == key]
    assert len(mine) == sum(tree.n_nodes(level) for level in range(tree.n_levels))
    level1 = mine[mine["level"] == 1].sort_values("node")
    np.testing.assert_array_equal(level1["parent"], tree.parents[1])
    np.testing.assert_array_equal(level1["area"], tree.areas(1))


# ---------------------------------------------------------------------- hierseg browse
def test_gallery_filters_opens_drills_and_recuts_without_the_model(one_process: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gradio")
    import hierseg.segmenter
    from explorer.gallery import ALL, Gallery, build_gallery, click, granularity
    from hierseg.hierarchy import ROOT

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("browsing must not load a model")

    monkeypatch.setattr(hierseg.segmenter, "load_segmenter", no_model)
    gallery = Gallery(one_process)
    assert gallery.statuses() == [ALL, "error", "ok"]
    thumbnails = gallery.page(gallery.rows(), 0)
    assert len(thumbnails) == 4 and all(image.ndim == 3 and max(image.shape) <= 192 for image, _ in thumbnails)
    errors = gallery.rows(status="error")
    assert errors["path"].tolist() == [BROKEN] and gallery.page(errors, 0) == []
    label = gallery.labels()[1]
    assert set(gallery.rows(label=label)["label"]) == {label}
    key = gallery.rows(status="ok")["key"].iloc[0]
    session = gallery.open(key)
    assert session.source == gallery.results.hierarchy(key) and session.rgb.std() > 0  # the stored tree; the photo, not grey
    height, width = session.rgb.shape[:2]
    drilled = click(session, 0, 0)
    assert drilled.selected != ROOT and drilled.selected.level >= 0
    finer = granularity(session, 1.0)
    assert finer.hierarchy.n_nodes(0) >= session.hierarchy.n_nodes(0)
    assert finer.hierarchy.label_maps[-1].tolist() == session.hierarchy.label_maps[-1].tolist()
    from explorer.gallery import shown

    # Every value the page shows goes through the page's own component, as gradio does after a click.
    overlay, evidence, breadcrumb, table, slider = shown(drilled)
    page = {getattr(block, "label", None): block for block in build_gallery(gallery).blocks.values()}
    page["click a segment"].postprocess(overlay)
    assert page["selected segment"].postprocess(evidence).label == evidence["label"]
    assert slider["interactive"] is True and 0 <= slider["value"] <= 1


def test_manifest_from_a_list_file_is_sorted_and_keeps_missing_paths(photos: Path, tmp_path: Path) -> None:
    from hierseg.dataset.manifest import build_manifest, source_root

    listing = tmp_path / "photos.txt"
    absolute = sorted(photos.rglob("*.jpg"))
    listing.write_text("# photos\n" + "\n".join([str(absolute[1]), "", str(absolute[0]), "gone/missing.jpg"]))
    manifest = build_manifest(listing, shard_size=2)
    assert source_root(listing) == tmp_path and manifest.root == tmp_path
    assert manifest.rows["path"].tolist() == sorted(manifest.rows["path"].tolist())
    assert "gone/missing.jpg" in manifest.rows["path"].tolist()
    assert manifest.rows.set_index("path").loc["gone/missing.jpg", "size"] == -1
    # Paths outside the list's folder stay absolute; root / absolute is the absolute path.
    assert all((manifest.root / p).exists() for p in manifest.rows["path"] if p != "gone/missing.jpg")
    assert manifest.n_shards == 2 and len(manifest.shard(1)) == 1
    same = build_manifest(listing, shard_size=2)
    assert same.rows.equals(manifest.rows)


def test_status_and_export_commands(one_process: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hierseg.cli import main

    assert main(["dataset-status", str(one_process), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["ok"], status["error"], status["shards_done"], status["working_on"]) == (4, 1, 3, [])
    assert main(["export-dataset", str(one_process), str(tmp_path / "two.json"), "--format", "coco", "--limit", "2"]) == 0
    assert len(json.loads((tmp_path / "two.json").read_text())["images"]) == 2
    assert main(["browse", str(tmp_path / "nothing-here")]) == 2
    assert "no segment-dataset run" in capsys.readouterr().err


def test_browse_reaches_the_gallery_through_its_entry_point(one_process: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.metadata

    import explorer.gallery
    from hierseg import cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr(explorer.gallery, "launch_gallery", lambda out, **launch: seen.update(out=out, **launch))
    assert cli.main(["browse", str(one_process), "--port", "7999"]) == 0
    assert seen == {"out": str(one_process), "server_name": "127.0.0.1", "server_port": 7999, "share": False}
    # Without the app installed (no entry point), a clear error instead of a traceback.
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [])
    assert cli.main(["browse", str(one_process)]) == 2
    assert "pip install 'hierseg[app]'" in capsys.readouterr().err


def test_the_library_never_imports_the_app() -> None:
    """Imports go one way (hierseg <- explorer <- app.py): no module of the library names explorer or app."""
    import ast

    repo = Path(__file__).resolve().parents[1]
    upward = []
    for path in sorted((repo / "hierseg").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            upward += [f"{path.relative_to(repo)}: {n}" for n in names if n.split(".")[0] in ("explorer", "app", "training")]
    assert not upward, upward
