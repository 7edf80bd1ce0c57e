"""Screenshots of the app at 1440x1000 for the docs: a photo segmented, one segment selected.

    python tools/screenshots.py PHOTO OUT.png [PHOTO OUT.png ...] [--at 0.5,0.45] [--also 0.5,0.8]

``--also``: Ctrl-click a second point after the first, so the shot shows a selection of two segments as one.

Needs Debian chromium (/usr/bin/chromium) and playwright; launches the app on the default checkpoint.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _wait(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the page did not update in time")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs", nargs="+", help="PHOTO OUT.png pairs")
    parser.add_argument("--at", default="0.5,0.45", help="where to click on the photo (fractions of its size)")
    parser.add_argument("--also", default=None, help="where to Ctrl-click next, adding that segment to the selection")
    args = parser.parse_args()
    if len(args.pairs) % 2:
        parser.error("give PHOTO OUT.png pairs")
    fx, fy = (float(v) for v in args.at.split(","))
    sys.path.insert(0, str(REPO))
    import app
    from playwright.sync_api import sync_playwright

    demo = app.build_demo()
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, **app.LAUNCH_KWARGS)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for photo, out in zip(args.pairs[::2], args.pairs[1::2]):
                page = browser.new_page(viewport={"width": 1440, "height": 1000})
                page.goto(url)
                page.wait_for_selector("#run-button")
                page.locator("#input-image input[type=file]").set_input_files(photo)
                page.wait_for_selector("#overlay img", timeout=300_000)
                _wait(lambda: page.evaluate("() => !!(window.hierseg && window.hierseg.maps && window.hierseg.view)"))
                box = page.locator("#overlay img").bounding_box()
                page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
                _wait(lambda: page.evaluate("() => window.hierseg.view.selected !== '-1:0'"))
                if args.also:
                    ax, ay = (float(v) for v in args.also.split(","))
                    page.wait_for_timeout(1500)
                    page.keyboard.down("Control")
                    page.mouse.click(box["x"] + box["width"] * ax, box["y"] + box["height"] * ay)
                    page.keyboard.up("Control")
                    _wait(lambda: page.evaluate(
                        "() => Number(document.querySelector('#breadcrumb [data-selection]')?.dataset.selection ?? 1) > 1"))
                page.wait_for_timeout(1500)
                page.mouse.move(5, 5)
                page.evaluate("() => window.scrollTo(0, 0)")
                page.screenshot(path=out)
                print(f"{photo} -> {out}")
                page.close()
            browser.close()
    finally:
        demo.close()


if __name__ == "__main__":
    main()
