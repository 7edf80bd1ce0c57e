""""Refine on this photo" in the app: the ``/refine`` endpoint and the button, progress bar and toggle."""
from __future__ import annotations

import os
from typing import Iterator

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
from gradio_client import Client, handle_file  # noqa: E402

from test_app_api import EXAMPLE, app_module, checkpoint_for_tests, launch  # noqa: E402
from test_browser import CHROMIUM, CHROMIUM_ARGS, open_page, upload, wait_for  # noqa: E402


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    demo = app_module().build_demo(default_checkpoint=checkpoint_for_tests(tmp_path_factory.mktemp("checkpoint")))
    yield launch(demo)
    demo.close()


def test_refine_endpoint_answers_like_segment(url: str) -> None:
    client = Client(url, verbose=False)
    with pytest.raises(Exception, match="Segment a photo first"):
        client.predict(1, api_name="/refine")
    first = client.predict(handle_file(str(EXAMPLE)), api_name="/segment")
    assert first["version"] == "first" and "refine" not in first
    refined = client.predict(2, api_name="/refine")
    assert set(refined) == set(first) | {"refine"}
    assert refined["version"] == "refined" and refined["refine"]["steps_done"] == 2
    assert refined["image_size"] == first["image_size"]
    assert [lvl["n_nodes"] for lvl in refined["levels"]] == [lvl["n_nodes"] for lvl in first["levels"]]
    # The session now holds the refined tree: drilling walks it.
    child = refined["root"]["children"][0]["node"]
    assert client.predict(child, api_name="/drill")["node"] == child
    # Steps default to the app's setting when left empty; a silly count is refused and the app keeps serving.
    with pytest.raises(Exception, match="steps"):
        client.predict(1000, api_name="/refine")
    assert client.predict(None, api_name="/refine")["refine"]["steps_done"] >= 1


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed")
def test_refine_button_shows_progress_then_the_refined_tree(url: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = open_page(browser, url)
        upload(page)
        version = page.locator("#refine-version")
        assert not version.is_visible()  # nothing to compare before a refinement
        caption = lambda: page.evaluate("() => document.querySelector('#caption .caption')?.dataset.version ?? ''")  # noqa: E731
        assert caption() == "first"
        page.locator("#refine-button").click()
        # The progress bar names the work and counts steps while the model adapts.
        wait_for(lambda: "Refining on this photo" in page.locator("body").inner_text(), timeout=60,
                 what=lambda: "(no progress text)")
        wait_for(lambda: caption() == "refined", timeout=120, what=lambda: f"(caption version {caption()!r})")
        assert "Refined on this photo" in page.locator("#caption").inner_text()
        assert version.is_visible()
        assert page.locator("#refine-version input[value=refined]").is_checked()
        # The toggle shows the first tree again, and back.
        page.locator("#refine-version label", has_text="Before").click()
        wait_for(lambda: caption() == "first", what=lambda: f"(caption version {caption()!r})")
        page.locator("#refine-version label", has_text="Refined").click()
        wait_for(lambda: caption() == "refined", what=lambda: f"(caption version {caption()!r})")
        browser.close()
