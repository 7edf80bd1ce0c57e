""""Refine on this photo" in the app: the ``/refine`` endpoint (the button, progress bar and toggle are in test_browser.py)."""
from __future__ import annotations

import pytest
from conftest import EXAMPLE
from gradio_client import Client, handle_file


@pytest.mark.slow
def test_refine_endpoint_answers_like_segment(app_url: str) -> None:
    client = Client(app_url, verbose=False)
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
    assert client.predict(api_name="/refine")["refine"]["steps_done"] >= 1, "steps are optional"
    with pytest.raises(Exception, match="whole number"):
        client.predict(0.5, api_name="/refine")  # never rounded to 0 on the way
