"""The app in headless Debian chromium, as a person uses it: upload, hover, click, keys, levels, phone.

Screenshots go to a temp folder; ``HIERSEG_UPDATE_SCREENSHOT=1`` also writes ``docs/screenshot.png``.
"""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from conftest import REPO
from test_explore import heads_in_column

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOT = REPO / "docs" / "screenshot.png"
PHOTO = REPO / "examples" / "astronaut.jpg"
# The level a fresh upload shows (the parts of the whole image), per photo: what a level coarser than
# the parts of every ancestor of a selection falls back to.
ROOT_PARTS_LEVEL: dict[str, int] = {}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed"),
]


@pytest.fixture(scope="module")
def server(app_url: str) -> str:
    return app_url


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_page(browser, url: str, width: int = 1440, height: int = 1000):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(url)
    page.wait_for_selector("#run-button")
    return page


@pytest.fixture(scope="module")
def page(browser, server: str):
    """One desktop page with the astronaut segmented, shared by the tests below (they run in file order)."""
    page = open_page(browser, server)
    upload(page)
    yield page
    page.close()


def upload(page, photo: Path = PHOTO) -> None:
    page.locator("#input-image input[type=file]").set_input_files(str(photo))
    page.wait_for_selector("#overlay img", timeout=120_000)
    wait_for(lambda: view(page) and view(page)["selected"] == "-1:0" and maps_loaded(page), timeout=60)
    ROOT_PARTS_LEVEL[photo.name] = view(page)["level"]


def expected_after_level(path: list[tuple[str, int]], level: int) -> tuple[str, int]:
    """(selected, level) after choosing ``level`` with ``path`` selected (root first, each node with the level of
    its parts): finer than the selection's parts colours them inside it; coarser selects the nearest ancestor
    whose parts are that coarse, the whole image only when none is (shown then at its own parts if finer)."""
    selected, parts_level = path[-1]
    if level >= parts_level:
        return selected, level
    for node, parts in reversed(path[:-1]):
        if parts <= level:
            return node, level
    return path[0][0], max(level, path[0][1])


def shown(page) -> tuple[str, int]:
    state = view(page)
    return state["selected"], state["level"]


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: Callable[[], object] = lambda: "") -> object:
    """Poll until ``condition()`` is truthy (gradio updates arrive asynchronously); ``what`` describes a failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"the page did not update in time {what()}")


def wait_settled(read: Callable[[], Any], quiet_ms: int = 1500, timeout: float = 30) -> Any:
    """What ``read()`` gives once it has not changed for ``quiet_ms`` (the page's pending updates are in)."""
    deadline, last = time.monotonic() + timeout, read()
    while time.monotonic() < deadline:
        time.sleep(quiet_ms / 1000)
        now = read()
        if now == last:
            return now
        last = now
    raise AssertionError(f"the page kept changing for {timeout} s: {last}")


def view(page) -> dict | None:
    """What the tree was last drawn for: ``{"selected", "level", "centre"}``."""
    return page.evaluate("() => window.hierseg ? window.hierseg.view : null")


def maps_loaded(page) -> bool:
    return bool(page.evaluate("() => !!(window.hierseg && window.hierseg.maps)"))


def tree_data(page) -> dict:
    return page.evaluate(
        "() => { const t = document.querySelector('#tree .js-plotly-plot').data[0];"
        " return {ids: Array.from(t.ids), parents: Array.from(t.parents)}; }"
    )


def tree_column(page) -> set[str]:
    """The drawn tree's cells of the level shown inside the selection (its parent for a superpixel), as chains."""
    shown = view(page)
    return heads_in_column(tree_data(page), shown["centre"], shown["level"])


def table_nodes(page) -> list[str]:
    return page.evaluate("() => Array.from(document.querySelectorAll('#segments tr[data-node]')).map(r => r.dataset.node)")


def current(page) -> str:
    return page.evaluate("() => document.querySelector('#breadcrumb [data-current]')?.dataset.current ?? ''")


def hovered(page) -> str:
    return page.evaluate("() => document.querySelector('#overlay canvas.hover-outline')?.dataset.node ?? ''")


def photo_point(page, fx: float, fy: float) -> tuple[float, float]:
    wait_for(lambda: page.evaluate("() => { const i = document.querySelector('#overlay img'); return i && i.complete && i.naturalWidth > 0; }"))
    page.locator("#overlay img").scroll_into_view_if_needed()  # mouse coordinates are the viewport's
    box = page.locator("#overlay img").bounding_box()
    return box["x"] + box["width"] * fx, box["y"] + box["height"] * fy


def outline_pixels(page) -> int:
    """Opaque pixels of the hover canvas (the outline drawn)."""
    return page.evaluate(
        "() => { const c = document.querySelector('#overlay canvas.hover-outline'); if (!c || !c.width) return 0;"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;"
        " for (let i = 3; i < d.length; i += 4) if (d[i] === 255) n++; return n; }"
    )


def outline_tones(page) -> tuple[int, int]:
    """(light, dark) opaque pixels of the hover canvas."""
    return tuple(page.evaluate(
        "() => { const c = document.querySelector('#overlay canvas.hover-outline'); if (!c || !c.width) return [0, 0];"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let light = 0, dark = 0;"
        " for (let i = 0; i < d.length; i += 4) if (d[i + 3] === 255) { const v = d[i] + d[i + 1] + d[i + 2];"
        " if (v > 600) light++; else if (v < 150) dark++; } return [light, dark]; }"
    ))


def test_hover_outlines_the_segment_a_click_selects_and_sends_nothing(page) -> None:
    requests: list[str] = []
    record = lambda request: requests.append(request.url)  # noqa: E731
    page.on("request", record)
    for fx, fy in [(0.3, 0.3), (0.5, 0.45), (0.7, 0.6), (0.5, 0.4)]:
        page.mouse.move(*photo_point(page, fx, fy), steps=5)
    page.wait_for_timeout(300)
    page.remove_listener("request", record)
    node = wait_for(lambda: hovered(page))
    assert outline_pixels(page) > 20, "an outline is drawn"
    light, dark = outline_tones(page)
    assert light > 20 and dark > 20, f"a light and a dark line, visible on any colour ({light}, {dark})"
    assert requests == [], f"mouse moves reached the server: {requests}"
    # The outlined segment is the one a click there selects.
    page.mouse.click(*photo_point(page, 0.5, 0.4))
    wait_for(lambda: current(page) == node)
    assert view(page)["selected"] == node


def test_a_click_always_reveals_something_new(page) -> None:
    """Drilling down by clicks never shows one part again; at the bottom the caption says so."""
    seen = [current(page)]
    for _ in range(8):
        rows = table_nodes(page)
        if "finest part" in page.locator("#caption").inner_text():
            break
        assert len(rows) >= 2, f"{seen[-1]} shows {rows}"
        page.locator(f"#segments tr[data-node='{rows[0]}']").click()
        wait_for(lambda: current(page) == rows[0])
        seen.append(rows[0])
    assert "finest part" in page.locator("#caption").inner_text(), seen
    assert len(set(seen)) == len(seen)


def escape_to_the_whole_image(page) -> None:
    """Press Esc until the whole image is selected (the page has the focus)."""
    while current(page) != "-1:0":
        before = current(page)
        page.keyboard.press("Escape")
        wait_for(lambda: current(page) != before)


def test_keyboard_up_and_siblings(page) -> None:
    page.mouse.click(10, 10)  # focus the page, not an input
    start = current(page)
    page.keyboard.press("ArrowRight")
    wait_for(lambda: current(page) != start)
    page.keyboard.press("ArrowLeft")
    wait_for(lambda: current(page) == start)
    for key in ["Escape", "Backspace"]:
        before = current(page)
        page.keyboard.press(key)
        wait_for(lambda: current(page) != before)
    escape_to_the_whole_image(page)
    assert page.locator("#up-button").is_disabled(), "Up at the root looks inactive"


def crumbs(page) -> list[str]:
    """The breadcrumb's nodes, root first, the selection last."""
    return page.evaluate("() => Array.from(document.querySelectorAll('#breadcrumb [data-node], #breadcrumb [data-current]'))"
                         ".map(c => c.dataset.node ?? c.dataset.current)")


def test_a_coarser_level_keeps_the_selections_ancestor_and_the_tree_matches_the_photo(page) -> None:
    """Drilled three parts deep, every level from the finest to the coarsest: a finer one colours the
    selection's parts, a coarser one selects its ancestor whose parts those are (not the whole image), and
    the tree's column of that level inside the selection is the table's segments."""
    page.mouse.click(10, 10)  # focus the page, not an input
    escape_to_the_whole_image(page)
    path = [("-1:0", ROOT_PARTS_LEVEL[PHOTO.name])]
    for _ in range(3):
        rows = table_nodes(page)
        if "finest part" in page.locator("#caption").inner_text():
            break
        page.locator(f"#segments tr[data-node='{rows[0]}']").click()
        wait_for(lambda: current(page) == rows[0] and view(page)["selected"] == rows[0])
        path.append((rows[0], view(page)["level"]))  # a drill shows the selection's parts
    assert [node for node, _ in path] == crumbs(page)
    assert len(path) >= 3, path
    options = page.locator("#level label")
    kept_an_ancestor = False
    for index in reversed(range(options.count())):
        level = int(page.evaluate("(i) => document.querySelectorAll('#level input')[i].value", index))
        expected = expected_after_level(path, level)
        options.nth(index).click()
        # Updates land component by component: wait until the tree, table and breadcrumb describe one view.
        wait_for(lambda: shown(page) == expected and consistent(page),
                 what=lambda: (level, expected, view(page), table_nodes(page), tree_column(page)))
        kept_an_ancestor |= expected[0] not in ("-1:0", path[-1][0])
        path = path[:[node for node, _ in path].index(expected[0]) + 1]
    assert kept_an_ancestor, "a coarser level kept an ancestor below the whole image selected"


def consistent(page) -> bool:
    shown = view(page)
    rows = table_nodes(page)
    checked = page.evaluate("() => document.querySelector('#level input:checked')?.value ?? null")
    return bool(rows) and set(rows) == tree_column(page) and current(page) == shown["selected"] and (
        checked is not None and int(checked) == shown["level"])


def test_level_strip_sets_the_level(page) -> None:
    page.mouse.click(10, 10)  # focus the page, not an input
    escape_to_the_whole_image(page)
    thumbs = page.locator("#level-strip [data-level]")
    assert thumbs.count() == len(page.locator("#level label").all())
    for index in (1, thumbs.count() - 1, 0):  # thumbnails run coarse to fine: the i-th is level i
        expected = expected_after_level([("-1:0", ROOT_PARTS_LEVEL[PHOTO.name])], index)
        thumbs.nth(index).click()
        wait_for(lambda: shown(page) == expected, what=lambda: (index, expected, view(page)))
        wait_for(lambda: page.locator("#level-strip .current").get_attribute("data-level") == str(view(page)["level"]))
        wait_for(lambda: consistent(page))


def slider_count(page) -> str:
    return page.locator("#granularity [data-testid='block-info']").inner_text()


def region(page, node: str) -> list[int]:
    """Indices of the pixels of ``node`` in the hover bridge's maps (the page's own copy of the label maps)."""
    return page.evaluate(
        "(node) => { const [l, i] = node.split(':').map(Number), hs = window.hierseg, out = [];"
        " if (l < 0) return Array.from({length: hs.width * hs.height}, (_, p) => p);"
        " hs.maps[l].forEach((v, p) => { if (v === i) out.push(p); }); return out; }", node)


def test_the_granularity_slider_keeps_the_selection(page, app_checkpoint: str) -> None:
    """Dragging the slider finer (arrow keys: every step is an input event) re-cuts the tree: the coarse count
    in its label grows, the selection stays a segment holding the old one or inside it, never the whole
    image, and the tree, table, breadcrumb and level buttons follow; back coarser, the same."""
    from hierseg import load_segmenter

    slider = page.locator("#granularity")
    if load_segmenter(app_checkpoint).config.tree is None:
        assert not slider.is_visible(), "fixed levels: no granularity control"
        pytest.skip("this checkpoint reads out fixed levels")
    assert slider.is_visible()
    page.mouse.click(10, 10)
    escape_to_the_whole_image(page)
    page.mouse.click(*photo_point(page, 0.5, 0.4))
    wait_for(lambda: current(page) not in ("", "-1:0") and consistent(page))
    for key in ("ArrowRight", "ArrowLeft"):
        before, label = current(page), slider_count(page)
        old = set(region(page, before))
        page.locator("#granularity input[type=range]").focus()
        for _ in range(30):
            page.keyboard.press(key)
        wait_for(lambda: slider_count(page) != label and view(page)["selected"] == current(page) and consistent(page),
                 what=lambda: (label, slider_count(page), view(page), current(page)))
        page.wait_for_timeout(1500)  # the last of the burst
        wait_for(lambda: consistent(page))
        after = current(page)
        assert after != "-1:0", f"{key}: the selection {before} was lost to the whole image"
        new = set(region(page, after))
        assert old <= new or new <= old, f"{key}: {after} neither holds nor lies inside {before}"
        counts = int(slider_count(page).split()[1]), int(label.split()[1])
        assert (counts[0] > counts[1]) == (key == "ArrowRight"), (key, label, slider_count(page))
    page.mouse.click(10, 10)  # the keys go to the page again, not the slider
    escape_to_the_whole_image(page)


def tree_cells(page) -> list[str]:
    return page.evaluate("() => Array.from(document.querySelector('#tree .js-plotly-plot').data[0].ids)")


def test_the_slider_returns_to_the_first_cut_and_resets(page, app_checkpoint: str) -> None:
    """One step of the slider and back changed the tree (11 -> 10 segments) and only "Run again" went back:
    the first cut is on the slider's grid, one step and back gives it exactly, and Reset returns to it."""
    from hierseg import load_segmenter

    if load_segmenter(app_checkpoint).config.tree is None:
        pytest.skip("this checkpoint reads out fixed levels")
    page.mouse.click(10, 10)
    escape_to_the_whole_image(page)
    slider = page.locator("#granularity input[type=range]")
    start, cells, label = slider.input_value(), tree_cells(page), slider_count(page)
    for steps in (1, 12):
        slider.focus()
        for _ in range(steps):
            page.keyboard.press("ArrowRight")
        wait_for(lambda: slider.input_value() != start)
        page.wait_for_timeout(1500)
        for _ in range(steps):
            page.keyboard.press("ArrowLeft")
        wait_for(lambda: tree_cells(page) == cells and slider_count(page) == label, timeout=30,
                 what=lambda: f"back to the first cut after {steps} steps: {slider_count(page)} for {label}")
        assert slider.input_value() == start
    slider.focus()
    for _ in range(20):
        page.keyboard.press("ArrowRight")
    wait_for(lambda: slider_count(page) != label, timeout=30)
    settled = wait_settled(lambda: (slider_count(page), slider.input_value()))  # the last step's re-cut is in
    page.locator("#granularity-reset").click()
    wait_for(lambda: tree_cells(page) == cells and slider.input_value() == start, timeout=30,
             what=lambda: f"Reset: {slider_count(page)}, {slider.input_value()} for {label}, {start}")
    assert settled != (label, start)
    assert wait_settled(lambda: (tree_cells(page), slider_count(page), slider.input_value())) == (cells, label, start)
    page.mouse.click(10, 10)


def test_keys_keep_working_after_the_level_radio_and_a_checkbox(page) -> None:
    """Esc and the arrows stopped working after the level radio or a Display checkbox (focus stayed in it)."""
    page.mouse.click(10, 10)
    escape_to_the_whole_image(page)
    page.mouse.click(*photo_point(page, 0.5, 0.4))
    wait_for(lambda: current(page) not in ("", "-1:0") and consistent(page))
    selected, level = shown(page)
    page.locator("#level label").last.click()  # the finest level: the selection stays
    wait_for(lambda: view(page)["level"] != level and consistent(page))
    page.keyboard.press("Escape")
    wait_for(lambda: current(page) != selected, what=lambda: "(Esc after the radio)")
    if not page.locator("#outlines-only").is_visible():
        page.locator("#display").click()
    page.mouse.click(*photo_point(page, 0.5, 0.4))
    wait_for(lambda: current(page) not in ("", "-1:0") and consistent(page))
    page.locator("#outlines-only label").click()
    page.wait_for_timeout(500)
    before = current(page)
    page.keyboard.press("Escape")
    wait_for(lambda: current(page) != before, what=lambda: "(Esc after the checkbox)")
    page.locator("#outlines-only label").click()  # back as it was
    page.mouse.click(10, 10)
    escape_to_the_whole_image(page)


def test_hovering_a_tree_cell_outlines_its_region(page) -> None:
    page.wait_for_timeout(1000)  # let the tree's transition finish, or the hover lands mid-animation
    cell = page.locator("#tree g.slice").nth(1)
    cell.hover(force=True)
    wait_for(lambda: hovered(page) and outline_pixels(page) > 20, what=lambda: (hovered(page), outline_pixels(page)))
    assert hovered(page) in tree_data(page)["ids"]
    page.mouse.move(5, 5)


def test_display_controls_and_exports(page, tmp_path: Path) -> None:
    before = page.locator("#overlay img").get_attribute("src")
    page.locator("#display").click()
    page.locator("#outlines-only input").check()
    wait_for(lambda: page.locator("#overlay img").get_attribute("src") != before)
    outlined = page.locator("#overlay img").get_attribute("src")
    page.locator("#outlines-only input").uncheck()
    # A click while the photo is being replaced can be lost: let the redraw land first.
    wait_for(lambda: page.locator("#overlay img").get_attribute("src") != outlined)
    page.mouse.click(*photo_point(page, 0.5, 0.4))
    wait_for(lambda: current(page) not in ("", "-1:0"))
    node = current(page)
    page.locator("#export").click()
    # The file list shows each name as stem and extension on separate lines.
    names = wait_for(lambda: page.locator("#downloads").inner_text().count(".") >= 4
                     and page.locator("#downloads").inner_text().replace("\n", ""))
    stem = f"astronaut-{node.replace(':', '-')}"
    for name in (f"{stem}-mask.png", f"{stem}-cutout.png", "astronaut-coco.json", "astronaut-tree.zip"):
        assert name in names, names
    # The overlay downloads under the photo's and the node's name.
    assert page.locator("#overlay img").get_attribute("src").endswith(f"/{stem}.png")
    # The README's screenshot: one part deeper, so the tree shows a path; the screen a 1440x1000 visitor sees.
    page.locator("#display .label-wrap").click()  # folded again
    page.mouse.click(*photo_point(page, 0.5, 0.4))
    wait_for(lambda: current(page) != node and view(page)["selected"] == current(page))
    page.evaluate("() => window.scrollTo(0, 0)")
    page.mouse.move(5, 5)  # no hover outline
    page.wait_for_timeout(800)  # let the tree's transition finish
    shot = tmp_path / "screenshot.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 50_000
    if os.environ.get("HIERSEG_UPDATE_SCREENSHOT"):
        shutil.copy(shot, SCREENSHOT)


def test_a_fresh_page_offers_nothing_to_act_on_and_no_badge_over_the_photo(browser, server: str) -> None:
    """Before a photo, Run again, Up and Export are inactive; after one, no label badge over the photo."""
    page = open_page(browser, server)
    try:
        for button in ("#run-button", "#export", "#up-button"):
            assert page.locator(button).is_disabled(), button
        upload(page)
        assert page.locator("#run-button").is_enabled()
        # Refinement left the app (docs/eval/refine/results.md): nothing on the page offers it.
        assert page.get_by_role("button", name=re.compile("refine", re.I)).count() == 0
        assert page.locator("#refine-button, #refine-version").count() == 0
        labels = page.locator("#overlay [data-testid='block-label']")
        assert all(not label.is_visible() for label in labels.all()), "no label badge over the photo"
    finally:
        page.close()


def test_a_bad_upload_warns_once_and_the_input_shows_the_photo_on_screen(browser, server: str, tmp_path: Path) -> None:
    """One request and one toast per upload; after a file that cannot be segmented the input shows
    the photo the result is of again (or nothing, before any result), never the broken file."""
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    page = open_page(browser, server)
    joins: list[str] = []
    page.on("request", lambda request: joins.append(request.url) if "queue/join" in request.url else None)
    try:
        input_photo = lambda: page.evaluate(  # noqa: E731
            "() => document.querySelector('#input-image img')?.getAttribute('src') ?? ''")
        page.locator("#input-image input[type=file]").set_input_files(str(bad))
        wait_for(lambda: page.locator(".toast-body").count() >= 1)
        wait_for(lambda: input_photo() == "", what=input_photo)
        assert page.locator("#run-button").is_disabled()
        page.locator(".toast-body button").first.click()  # close it
        upload(page)
        joins.clear()
        page.locator("#input-image input[type=file]").set_input_files(str(bad))
        wait_for(lambda: page.locator(".toast-body").count() >= 1)
        wait_for(lambda: input_photo().endswith("/astronaut.jpg"), what=input_photo)
        page.wait_for_timeout(1500)  # a second event would come within this
        assert len(joins) == 1, joins
        toasts = page.locator(".toast-body").all_inner_texts()
        assert len(toasts) == 1 and "(2)" not in toasts[0] and toasts[0].count("broken.jpg") == 1, toasts
        assert page.locator("text=/^Error$/").count() == 0, "no output panel shows an error badge"
    finally:
        page.close()


def test_offline_checkpoint_falls_back_once(browser, app, app_checkpoint: str, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    """The list says what a release costs to download; picked when the Hub is gone: one message, and the
    dropdown returns to the checkpoint the result on screen came from."""
    from explorer import checkpoint_menu
    from hierseg.checkpoints import hub

    release = "official/moco-in1k-cast_small"
    monkeypatch.setenv("HIERSEG_CACHE", str(tmp_path))  # nothing converted yet
    monkeypatch.setattr(hub, "in_hub_cache", lambda repo, filename: False)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: True)  # online at start
    monkeypatch.setattr(checkpoint_menu, "release_download_size", lambda name, timeout=3.0: 180_000_000)
    demo = app.build_demo(default_checkpoint=app_checkpoint, checkpoints=[app_checkpoint, release])
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, **app.LAUNCH_KWARGS)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: False)  # gone by the time it is picked
    page = open_page(browser, url)
    try:
        upload(page)
        dropdown = page.locator("#checkpoint input")
        in_use = dropdown.input_value()
        dropdown.click()
        page.locator("[role=option]", has_text=f"{release} (download, 180 MB)").first.click()
        wait_for(lambda: page.locator(".toast-body").count() >= 1, timeout=60)
        page.wait_for_timeout(1500)
        assert page.locator(".toast-body").count() == 1 and "offline" in page.locator(".toast-body").inner_text()
        wait_for(lambda: dropdown.input_value() == in_use)
        assert page.locator("text=/^Error$/").count() == 0
    finally:
        page.close()
        demo.close()


def test_offline_the_list_says_why_and_a_typed_release_gets_a_message(browser, app, app_checkpoint: str,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    """No Hub at start: a line under the list says why the releases are missing; a release's name typed
    into the list is answered by one message, and the list goes back to the checkpoint in use."""
    from hierseg.checkpoints import OFFICIAL_RELEASES, hub

    release = "official/moco-in1k-cast_small"
    monkeypatch.setenv("HIERSEG_CACHE", str(tmp_path))  # nothing converted yet
    monkeypatch.setattr(hub, "in_hub_cache", lambda repo, filename: False)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: False)
    demo = app.build_demo(default_checkpoint=app_checkpoint, checkpoints=[app_checkpoint, *OFFICIAL_RELEASES])
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, **app.LAUNCH_KWARGS)
    page = open_page(browser, url)
    try:
        assert "Hub unreachable" in page.locator("#checkpoint").inner_text()
        dropdown = page.locator("#checkpoint input")
        in_use = dropdown.input_value()
        dropdown.fill(release)
        dropdown.press("Enter")
        wait_for(lambda: page.locator(".toast-body").count() >= 1, timeout=60)
        page.wait_for_timeout(1500)
        assert page.locator(".toast-body").count() == 1 and "offline" in page.locator(".toast-body").inner_text()
        wait_for(lambda: dropdown.input_value() == in_use)
    finally:
        page.close()
        demo.close()


def test_phone_shows_the_result_first(browser, server: str) -> None:
    """On a 390x844 phone the photo's result is on screen without scrolling past the input."""
    page = open_page(browser, server, width=390, height=844)
    try:
        upload(page)
        overlay = page.locator("#overlay img").bounding_box()
        photo_input = page.locator("#input-image").bounding_box()
        assert overlay["y"] < photo_input["y"], "the result comes before the input"
        assert page.locator("#display").bounding_box()["y"] < photo_input["y"], "Display before the input"
        photo_name = page.locator("#breadcrumb .photo-name").bounding_box()
        assert photo_name["y"] < overlay["y"], "the photo's name at the top of the result"
        assert overlay["y"] + 0.5 * overlay["height"] < 844, "the photo is on screen"
        width = page.evaluate("() => document.querySelector('#segments .table-scroll').clientWidth")
        assert width <= 390, "the table scrolls inside the screen instead of being cut off"
    finally:
        page.close()


# Characters that need an emoji font (absent on many machines, where they show as empty boxes).
EMOJI = re.compile("[\u2600-\u27bf\u2b00-\u2bff\ufe0f\U0001f000-\U0001faff]")


def test_first_screen_shows_the_intro_and_examples_not_empty_panels(browser, server: str) -> None:
    page = open_page(browser, server, height=1000)
    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        page.wait_for_timeout(500)
        for panel in ("#result-col", "#tree-col", "#prediction", "#display"):
            assert not page.locator(panel).is_visible(), f"{panel} is an empty box before a photo"
        assert page.locator(".gallery-item, [data-testid='examples'] button").first.is_visible(), "examples offered"
        text = page.locator("body").inner_text()
        assert "Esc" in text and "Tap" not in text
        assert not EMOJI.findall(text), EMOJI.findall(text)
        phone.goto(server)
        phone.wait_for_selector("#run-button")
        text = phone.locator("body").inner_text()
        assert "Tap" in text and "Esc" not in text and "arrow keys" not in text and "Point" not in text, text[:400]
        upload(page)
        text = page.locator("body").inner_text()
        assert not EMOJI.findall(text), EMOJI.findall(text)
    finally:
        page.close()
        phone.close()


def test_layout_at_1440x1000(page) -> None:
    """Table, display panel and export above the fold; the photo does not move as the breadcrumb grows;
    every level thumbnail in view; the opacity slider follows arrow keys and typed values at once."""
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.mouse.click(10, 10)
    escape_to_the_whole_image(page)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    for panel in ("#display", "#export", "#evidence"):
        box = page.locator(panel).bounding_box()
        assert box["y"] + box["height"] <= 1000, (panel, box)
    table = page.locator("#segments tr[data-node]").first.bounding_box()
    assert table["y"] + table["height"] <= 1000, table

    strip = page.locator("#level-strip .level-strip").bounding_box()
    last = page.locator("#level-strip [data-level]").last.bounding_box()
    assert last["x"] + last["width"] <= strip["x"] + strip["width"] + 1, (last, strip)
    assert page.evaluate("() => { const s = document.querySelector('#level-strip .level-strip');"
                         " return s.scrollWidth <= s.clientWidth; }")

    photo_top = lambda: page.locator("#overlay img").bounding_box()["y"]  # noqa: E731
    top = photo_top()
    for _ in range(4):
        rows = table_nodes(page)
        if len(rows) < 2:
            break
        page.locator(f"#segments tr[data-node='{rows[-1]}']").click()
        wait_for(lambda: current(page) == rows[-1])
        page.wait_for_timeout(200)
        assert abs(photo_top() - top) <= 1, "the breadcrumb pushed the photo"
    def crumbs() -> list[int]:  # [right edge of what shows, width of the whole line]
        return page.evaluate("() => { const c = document.querySelector('#breadcrumb .crumbs');"
                             " return [c.scrollLeft + c.clientWidth, c.scrollWidth]; }")

    # The line is redrawn asynchronously; its end (the selection) must come into view, not stay out of it.
    wait_for(lambda: crumbs()[0] >= crumbs()[1] - 1, timeout=5.0,
             what=lambda: f"the end of the breadcrumb (the selection) is in view: {crumbs()}")

    if not page.locator("#opacity").is_visible():
        page.locator("#display").click()
    before = page.locator("#overlay img").get_attribute("src")
    page.locator("#opacity input[type=range]").focus()
    page.keyboard.press("ArrowRight")
    wait_for(lambda: page.locator("#overlay img").get_attribute("src") != before, what=lambda: "(arrow key ignored)")
    before = page.locator("#overlay img").get_attribute("src")
    page.locator("#opacity input[type=number]").fill("0.9")  # typed, the field keeps the focus
    wait_for(lambda: page.locator("#overlay img").get_attribute("src") != before, what=lambda: "(typed value ignored)")


def test_an_example_is_segmented_once_when_picked(browser, server: str) -> None:
    page = open_page(browser, server)
    joins: list[str] = []
    page.on("request", lambda request: joins.append(request.url) if "queue/join" in request.url else None)
    try:
        page.locator("[data-testid='examples'] button, .gallery-item", has_text="chelsea").first.click()
        page.wait_for_selector("#overlay img", timeout=120_000)
        wait_for(lambda: view(page) and maps_loaded(page), timeout=60)
        assert page.locator("#overlay img").get_attribute("src").endswith("/chelsea.png")
        page.wait_for_timeout(1000)
        assert len(joins) == 1, joins
    finally:
        page.close()
