"""Latency and memory of the web app, measured through gradio_client against a local ``python app.py``.

    python benchmarks/app_latency.py                      # the app's own checkpoint choice
    python benchmarks/app_latency.py --checkpoint PATH    # any checkpoint folder

Measures, on the server the script starts:
  * segment: round trip of ``/segment`` on a 1024 px photo (upload included), median over ``--runs``;
    the server's own model timings come from the returned summary;
  * drill: server time of ``/drill`` (a node id in, children and evidence out) as gradio's queue
    reports it, and its round trip, medians;
  * memory: the server's resident set size (RSS) after 10 and after ``--requests`` requests
    (segments, drills and exports mixed, from two sessions);
  * hover bridge: the bytes of label maps the page receives once per segmentation (what lets it
    outline the segment under the pointer with no request per mouse move; that a mouse move sends
    nothing is checked by ``tests/test_browser.py``), and the level strip sent with it;
  * granularity: server time of one move of the granularity slider on the 1024 px photo (the re-cut,
    the carried selection and every panel the page redraws, ``Explorer.on_granularity`` in process),
    median over moves between positions 0.1 and 0.9 with a segment selected;
  * export: the tree zip (``/export``) of a 481x321 BSDS500 photo (``$HIERSEG_DATA/bsds500``; the
    astronaut example when absent) and the ``tree.json`` and ``evidence.npz`` in it.
Targets (issue): segment <= 400 ms on 2 CPU cores with the default checkpoint, drill <= 50 ms,
RSS growth from 10 to 200 requests within 10 %, tree.json <= 1 MB, a granularity move well under 1 s.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def start_app(checkpoint: str | None, port: int) -> subprocess.Popen:
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False"}
    if checkpoint:
        env["HIERSEG_CHECKPOINT"] = checkpoint
    server = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the app exited during start-up:\n{server.stderr.read()}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise RuntimeError("the app did not start within 300 s")


def record_server_durations(sink: list[float]) -> None:
    """Append gradio's own server-side duration of every finished call to ``sink`` (in ms).

    The queue's "process_completed" message carries how long the event took on the server
    (preprocess + function + postprocess); gradio_client receives it but only returns the data, so
    its private SSE reader is wrapped here.
    """
    from gradio_client.client import Endpoint

    read = Endpoint._sse_fn_v1plus

    def reading(self: Endpoint, *args: Any, **kwargs: Any) -> dict:
        result = read(self, *args, **kwargs)
        if isinstance(result, dict) and result.get("duration") is not None:
            sink.append(result["duration"] * 1e3)
        return result

    Endpoint._sse_fn_v1plus = reading


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return (time.perf_counter() - start) * 1e3, result


def bridge_bytes(checkpoint: str | None, photo: Path) -> tuple[int, int, int]:
    """(hover payload bytes, its gzip size as served, level strip bytes) for one segmentation of ``photo``, in process."""
    import gzip

    sys.path.insert(0, str(REPO))
    from explorer.hover import hover_payload
    from explorer.session import new_session
    from explorer.views import level_strip_html
    from hierseg import load_segmenter
    from hierseg.imageio import load_image

    rgb = load_image(photo)
    session = new_session(load_segmenter(checkpoint)(rgb), rgb)  # None: the library's default rule, as the app
    payload = hover_payload(session).encode()
    return len(payload), len(gzip.compress(payload)), len(level_strip_html(session).encode())


def export_bytes(checkpoint: str | None, photo: Path) -> tuple[int, int, int]:
    """(tree zip bytes, tree.json bytes in it, evidence.npz bytes in it) of one segmentation of ``photo``, in
    process, as ``/export`` writes it."""
    import zipfile

    sys.path.insert(0, str(REPO))
    from hierseg import load_segmenter
    from hierseg.export import export_tree_zip
    from hierseg.imageio import load_image

    with tempfile.TemporaryDirectory() as tmp:
        archive = export_tree_zip(load_segmenter(checkpoint)(load_image(photo)), Path(tmp) / "tree.zip")
        with zipfile.ZipFile(archive) as zipped:
            return (archive.stat().st_size, zipped.getinfo("tree.json").file_size,
                    zipped.getinfo("evidence.npz").file_size)


def granularity_move_ms(checkpoint: str | None, photo: Path, runs: int) -> list[float]:
    """Server times of ``runs`` granularity moves on ``photo`` with a coarse segment selected, in process
    (``Explorer.on_granularity``: re-cut, carried selection, every redrawn panel); [] for fixed levels."""
    import numpy as np

    sys.path.insert(0, str(REPO))
    import app
    from explorer import session as sessions
    from explorer.downloads import Downloads
    from explorer.granularity import has_granularity
    from explorer.uploads import read_upload
    from hierseg.checkpoints import default_checkpoint

    name = checkpoint or default_checkpoint()
    explorer = app.build_demo(default_checkpoint=name).explorer
    with tempfile.TemporaryDirectory() as tmp:
        explorer.downloads = Downloads(Path(tmp))
        state = explorer.segment_upload(read_upload({"path": str(photo)}), name)
        if not has_granularity(state.source):
            return []
        state = sessions.drill_to(state, state.chains.children(sessions.ROOT)[0])
        times = []
        for position in np.linspace(0.1, 0.9, runs):
            elapsed, updates = timed(lambda: explorer.on_granularity(state, float(position)))
            state = updates[explorer.ui.state]
            times.append(elapsed)
    return times


def bsds_photo() -> Path:
    """A 481x321 BSDS500 test photo from the shared data, or the astronaut example when it is absent."""
    data = Path(os.environ.get("HIERSEG_DATA", REPO.parent / "shared" / "data"))
    found = sorted((data / "bsds500" / "images" / "test").glob("*.jpg"))
    return found[0] if found else REPO / "examples" / "astronaut.jpg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="checkpoint folder or name (default: the app's own choice)")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per measurement")
    parser.add_argument("--requests", type=int, default=200, help="requests before the second memory reading")
    args = parser.parse_args()

    from gradio_client import Client, handle_file

    work = Path(tempfile.mkdtemp(prefix="hierseg-bench-"))
    photo = work / "photo-1024.jpg"
    Image.open(REPO / "examples" / "astronaut.jpg").resize((1024, 1024), Image.Resampling.BICUBIC).save(photo, quality=92)
    other = work / "photo-small.jpg"
    Image.open(REPO / "examples" / "coffee.jpg").save(other, quality=92)

    port = free_port()
    server = start_app(args.checkpoint, port)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        for _ in range(2):  # warm-up: first-call allocations, thread pools
            summary = client.predict(handle_file(str(photo)), api_name="/segment")
        segment_ms, model_ms = [], []
        for _ in range(args.runs):
            elapsed, summary = timed(lambda: client.predict(handle_file(str(photo)), api_name="/segment"))
            segment_ms.append(elapsed)
            model_ms.append(sum(summary["timings_ms"].values()))
        nodes = [child["node"] for child in summary["root"]["children"]]
        server_ms: list[float] = []
        record_server_durations(server_ms)
        drill_ms = [timed(lambda: client.predict(nodes[i % len(nodes)], api_name="/drill"))[0]
                    for i in range(max(args.runs, 20))]
        drill_server_ms = list(server_ms)

        # Memory: two sessions taking turns in blocks of four requests, each block opening with a
        # segmentation (so every drill has something to drill into); every 20th request exports.
        sessions = [client, Client(f"http://127.0.0.1:{port}/", verbose=False)]
        images = [photo, other]
        rss_at: dict[int, float] = {}
        for i in range(1, args.requests + 1):
            turn = (i - 1) // 4 % 2
            if i % 4 == 1:
                sessions[turn].predict(handle_file(str(images[turn])), api_name="/segment")
            elif i % 20 == 0:
                sessions[turn].predict(api_name="/export")
            else:
                sessions[turn].predict(("0:0", "-1:0")[i % 2], api_name="/drill")
            if i in (10, args.requests):
                rss_at[i] = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)

    growth = 100.0 * (rss_at[args.requests] / rss_at[10] - 1.0)
    hover_raw, hover_gzip, strip = bridge_bytes(args.checkpoint, photo)
    export_photo = bsds_photo()
    with Image.open(export_photo) as opened:
        export_size = "x".join(map(str, opened.size))
    zip_size, tree_json_size, evidence_size = export_bytes(args.checkpoint, export_photo)
    moves = granularity_move_ms(args.checkpoint, photo, args.runs)
    rows = [
        ("checkpoint", summary["checkpoint"], ""),
        ("cores available", str(os.cpu_count()), ""),
        ("segment 1024 px, round trip (median)", f"{statistics.median(segment_ms):.0f} ms", "<= 400 ms"),
        ("  server pipeline (decode+superpixels+model+tree)", f"{statistics.median(model_ms):.0f} ms", ""),
        ("  per stage (last run)", ", ".join(f"{k} {v:.0f}" for k, v in summary["timings_ms"].items()), ""),
        ("drill, server time (median)", f"{statistics.median(drill_server_ms):.1f} ms", "<= 50 ms"),
        ("drill, round trip through the queue (median)", f"{statistics.median(drill_ms):.1f} ms", ""),
        ("granularity move 1024 px, server redraw (median / max)",
         f"{statistics.median(moves):.0f} / {max(moves):.0f} ms" if moves else "no merge tree (fixed levels)", "< 1 s"),
        ("RSS after 10 requests", f"{rss_at[10]:.0f} MiB", ""),
        (f"RSS after {args.requests} requests", f"{rss_at[args.requests]:.0f} MiB", ""),
        ("RSS growth", f"{growth:+.1f} %", "<= 10 %"),
        ("hover bridge, sent once per segmentation", f"{hover_raw / 1024:.0f} KiB ({hover_gzip / 1024:.0f} KiB gzipped)", ""),
        ("level strip, sent once per segmentation", f"{strip / 1024:.0f} KiB", ""),
        ("hover bridge, sent per mouse move", "0 bytes (tests/test_browser.py)", "0"),
        (f"export zip of a {export_size} photo ({export_photo.name})", f"{zip_size / 1024:.0f} KiB", ""),
        ("  tree.json in it", f"{tree_json_size / 1024:.0f} KiB", "<= 1 MB"),
        ("  evidence.npz in it", f"{evidence_size / 1024:.0f} KiB", ""),
    ]
    width = max(len(row[0]) for row in rows)
    value_width = max(len(row[1]) for row in rows)
    print(f"{'measure':<{width}}  {'value':<{value_width}}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {target}")


if __name__ == "__main__":
    main()
