"""Two segments selected as one, in headless Debian chromium: Ctrl-click on the table and the photo, the
"Add to selection" switch, the union lit on the photo and named in the evidence panel, Esc back to one."""
from __future__ import annotations

import pytest
from test_browser import CHROMIUM, browser, current, open_page, photo_point, server, upload, view, wait_for  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed"),
]


@pytest.fixture(scope="module")
def page(browser, server: str):  # noqa: F811
    page = open_page(browser, server)
    upload(page)
    yield page
    page.close()


def evidence(page) -> str:
    return page.locator("#evidence").inner_text()


def selection_size(page) -> int:
    """How many segments the breadcrumb says are selected (1 when it names one segment)."""
    return int(page.evaluate("() => document.querySelector('#breadcrumb [data-selection]')?.dataset.selection ?? 1"))


def outlined_cells(page) -> set[str]:
    """The tree's cells drawn with the selection's outline (3 px)."""
    return set(page.evaluate(
        "() => { const t = document.querySelector('#tree .js-plotly-plot').data[0];"
        " return Array.from(t.ids).filter((id, i) => t.marker.line.width[i] === 3); }"))


def lit_share(page) -> float:
    """Mean brightness of the photo shown (what is dimmed outside the selection is dark)."""
    wait_for(lambda: page.evaluate("() => { const i = document.querySelector('#overlay img'); return i && i.complete && i.naturalWidth > 0; }"))
    return page.evaluate(
        "() => { const img = document.querySelector('#overlay img'); const c = document.createElement('canvas');"
        " c.width = img.naturalWidth; c.height = img.naturalHeight; const ctx = c.getContext('2d');"
        " ctx.drawImage(img, 0, 0); const d = ctx.getImageData(0, 0, c.width, c.height).data; let s = 0;"
        " for (let i = 0; i < d.length; i += 4) s += d[i] + d[i + 1] + d[i + 2]; return s / (d.length / 4) / 765; }")


def point_outside(page, node: str) -> tuple[float, float]:
    """A point of the photo (fractions of its width and height) outside ``node``, from the page's own label maps."""
    return tuple(page.evaluate(
        "(node) => { const hs = window.hierseg; const [level, index] = node.split(':').map(Number);"
        " const map = hs.maps[level]; for (const fy of [0.5, 0.3, 0.7, 0.15, 0.85]) for (const fx of [0.5, 0.2, 0.8, 0.1, 0.9]) {"
        " const p = Math.floor(fy * hs.height) * hs.width + Math.floor(fx * hs.width);"
        " if (map[p] !== index) return [fx, fy]; } return null; }", node))


def test_ctrl_click_puts_a_second_segment_into_the_selection_and_names_the_union(page) -> None:
    rows = page.evaluate("() => Array.from(document.querySelectorAll('#segments tr[data-node]')).map(r => r.dataset.node)")
    assert len(rows) >= 2, rows
    first = rows[0]
    page.locator(f"#segments tr[data-node='{first}']").click()
    wait_for(lambda: current(page) == first and view(page)["selected"] == first)
    alone_evidence, alone_lit = wait_for(lambda: evidence(page)), lit_share(page)

    # Ctrl-click on the photo beside the selection: the neighbour there joins it.
    fx, fy = point_outside(page, first)
    page.keyboard.down("Control")
    page.mouse.click(*photo_point(page, fx, fy))
    page.keyboard.up("Control")
    wait_for(lambda: selection_size(page) == 2, what=lambda: page.locator("#caption").inner_text())
    wait_for(lambda: len(outlined_cells(page)) >= 2)
    members = outlined_cells(page)
    assert first in members, members
    assert "selection of 2 segments" in page.locator("#caption").inner_text().lower()
    wait_for(lambda: "2 segments as one" in evidence(page), what=lambda: evidence(page))
    # The union is lit (the second segment no longer dimmed) and the evidence is the union's.
    wait_for(lambda: lit_share(page) > alone_lit + 0.01, what=lambda: (alone_lit, lit_share(page)))
    wait_for(lambda: evidence(page) != alone_evidence, what=lambda: (alone_evidence, evidence(page)))

    # Esc: back to the first segment alone, its own evidence.
    page.keyboard.press("Escape")
    wait_for(lambda: selection_size(page) == 1 and current(page) == first)
    wait_for(lambda: evidence(page) == alone_evidence)


def test_the_switch_adds_with_a_plain_click_and_a_plain_click_goes_back_to_one(page) -> None:
    first = current(page)
    page.locator("#add-to-selection input").check()
    fx, fy = point_outside(page, first)
    page.mouse.click(*photo_point(page, fx, fy))
    wait_for(lambda: selection_size(page) == 2)
    # With the switch off, a Shift-click on the member takes it out again.
    page.locator("#add-to-selection input").uncheck()
    page.keyboard.down("Shift")
    page.mouse.click(*photo_point(page, fx, fy))
    page.keyboard.up("Shift")
    wait_for(lambda: selection_size(page) == 1 and current(page) == first)
    # Added again with Ctrl; then a plain click on the photo selects one segment.
    page.keyboard.down("Control")
    page.mouse.click(*photo_point(page, fx, fy))
    page.keyboard.up("Control")
    wait_for(lambda: selection_size(page) == 2)
    page.mouse.click(*photo_point(page, fx, fy))
    wait_for(lambda: selection_size(page) == 1 and current(page) != "")
