"""A ``gr.Label`` whose heading is the label the explorer states, not whichever class scores highest.

``gr.Label`` heads its panel with its top class, so a segment the table calls "uncertain (monarch 4%)"
was headed "monarch"; this panel takes the heading from the value (``classes.heading``).
"""
from __future__ import annotations

from typing import Any

import gradio as gr
from gradio.components.label import LabelConfidence, LabelData

__all__ = ["LabelPanel"]


class LabelPanel(gr.Label):
    """``gr.Label`` drawn by the same page component, taking ``{"label": heading, "confidences": [...]}``."""

    def get_block_name(self) -> str:
        return "label"

    def postprocess(self, value: Any) -> LabelData | dict | None:
        if isinstance(value, dict) and isinstance(value.get("confidences"), list):
            confidences = value["confidences"][: self.num_top_classes]
            return LabelData(label=value["label"], confidences=[LabelConfidence(**item) for item in confidences])
        return super().postprocess(value)
