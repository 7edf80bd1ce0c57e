"""The app in headless Debian chromium: upload, drill on the photo, drill in the tree; saves docs/screenshot.png."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from test_app_api import REPO, import_app  # noqa: E402  (shares the checkpoint choice and the imported app)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOT = REPO / "docs" / "screenshot.png"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed"),
]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    sync_api = pytest.importorskip("playwright.sync_api")
    app = import_app(tmp_path_factory.mktemp("checkpoint"))
    _, url, _ = app.demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, **app.LAUNCH_KWARGS)
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 960})
            page.goto(url)
            page.wait_for_selector("#segment-button")
            yield page
            browser.close()
    finally:
        app.demo.close()


def wait_for(condition: Callable[[], object], timeout: float = 30.0) -> object:
    """Poll until ``condition()`` is truthy (gradio updates arrive asynchronously)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("the page did not update in time")


def snapshot(page) -> dict[str, str]:
    """What the person sees: the selected node (breadcrumb), the evidence, the table, the overlay, the tree's centre."""
    return {
        "crumbs": page.locator("#breadcrumb").inner_text(),
        "current": page.locator("#breadcrumb .crumb.current").inner_text() if page.locator(
            "#breadcrumb .crumb.current").count() else "",
        "evidence": page.locator("#evidence").inner_text(),
        "table": page.locator("#segments").inner_text(),
        "overlay": page.locator("#overlay img").get_attribute("src") or "",
        "tree": page.evaluate("() => document.querySelector('#tree .js-plotly-plot')?.data?.[0]?.level ?? ''"),
    }


def test_drill_on_the_photo_then_in_the_tree(page) -> None:
    page.locator("#input-image input[type=file]").set_input_files(str(REPO / "examples" / "astronaut.jpg"))
    page.wait_for_selector("#overlay img", timeout=60_000)
    wait_for(lambda: snapshot(page)["tree"] == "-1:0")
    start = snapshot(page)
    assert start["crumbs"].strip() == "whole image" and "0:0" in start["table"]

    # Click a coarse segment on the photo: it becomes the selection, its children appear everywhere.
    box = page.locator("#overlay img").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.35)
    wait_for(lambda: snapshot(page)["tree"].startswith("0:"))
    photo = snapshot(page)
    node = photo["tree"]
    assert photo["current"].startswith(node), "breadcrumb and tree agree"
    assert photo["overlay"] != start["overlay"] and photo["evidence"] != start["evidence"]
    assert "1:" in photo["table"] and "0:0" not in photo["table"].split("\n")[1:], "the table lists the children"

    # The level selector colours finer parts of the same selection.
    page.locator("#level label").nth(1).click()
    wait_for(lambda: "2:" in snapshot(page)["table"])
    finer = snapshot(page)
    assert finer["tree"] == node and finer["current"] == photo["current"] and finer["overlay"] != photo["overlay"]
    page.locator("#level label").nth(0).click()
    wait_for(lambda: "2:" not in snapshot(page)["table"])

    # Click a child in the sunburst: same outcome, driven from the tree.
    page.evaluate(
        "() => { const gd = document.querySelector('#tree .js-plotly-plot');"
        " gd.on('plotly_sunburstclick', ev => {"
        " window.hiersegClicked = ev.points[0].id; window.hiersegLabel = ev.points[0].label; }); }"
    )
    slices = page.locator("#tree g.slice")
    wait_for(lambda: slices.count() > 1)
    for index in range(1, slices.count()):
        slices.nth(index).locator("path.surface").dispatch_event("click")
        clicked = page.evaluate("() => window.hiersegClicked")
        if clicked and clicked.startswith("1:"):
            break
    assert clicked and clicked.startswith("1:"), "a child sector was clicked"
    wait_for(lambda: snapshot(page)["current"].startswith(clicked))
    tree = snapshot(page)
    assert tree["tree"] in (clicked, node), "the tree is centred on the selection (or its parent for a leaf)"
    assert tree["crumbs"].count("›") == 2 and node in tree["crumbs"]
    assert tree["overlay"] != photo["overlay"]
    # The evidence panel now shows the clicked child: its top class is the one the sector was labelled
    # with (a child may share its parent's rounded top-5, so comparing the two panels proves nothing).
    label = page.evaluate("() => window.hiersegLabel")
    top_class = tree["evidence"].split("\n")[1]
    assert label.split(",")[0].strip() == top_class.split(",")[0].strip(), (label, top_class)

    # Up goes back to the segment picked on the photo.
    page.locator("#up-button").click()
    wait_for(lambda: snapshot(page)["current"].startswith(node + " "))
    assert snapshot(page)["tree"] == node

    SCREENSHOT.parent.mkdir(exist_ok=True)
    time.sleep(1.0)  # let the sunburst transition finish
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 50_000
