"""The one rule that names a distribution over classes: what the app, the API, the COCO export and the CLI say.

A node is named by its most specific class when that class's calibrated probability reaches
``NAME_THRESHOLD``; otherwise by the most specific *family* whose classes together reach it, where
only the basic-level families of ``hierseg/data/name_families.json`` count (twelve dog breeds sharing
85% read "dog"; upper categories such as "implement" or "placental" never name anything); otherwise
the node is "uncertain", and its top class is given only as a guess. A vocabulary that is not
ImageNet-1k has no families, so only its classes themselves can be named.

The threshold was chosen on the dev half of held-out photos (object-centred ImageNet photos, people,
scenes) as the candidate (0.5, 0.55, 0.6, 0.7) with the most right names net of wrong ones: 0.7. It is
a majority claim, so the most specific name is unique. Every figure is measured on the other half
(``training/evaluation/naming.py``, ``docs/eval/naming/results.md``).

Numbers agree with the rule: percentages are shown rounded down (``percent``), so a stated name never
reads under the threshold and an unnamed class never reads at it, and classes under ``MIN_SHOWN``
are left out of every list of classes rather than shown as "0%".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from .class_hierarchy import SLACK, ClassHierarchy, imagenet_hierarchy
from .hierarchy import Hierarchy, NodeLike

__all__ = ["MIN_SHOWN", "NAME_THRESHOLD", "UNCERTAIN", "Label", "family_tree", "label", "node_label", "percent",
           "short_name", "shown_classes"]

NAME_THRESHOLD = 0.7  # chosen on the dev half (module docstring)
UNCERTAIN = "uncertain"
# Classes under this probability are left out of every list (the panel's bars, the API's top classes).
MIN_SHOWN = 0.005


def percent(probability: float) -> int:
    """``probability`` as a whole percent, rounded down: 0.499 reads 49, never the 50 of a stated name (with
    the rule's float32 ``SLACK``: 0.9 stored as 0.89999998 reads 90)."""
    return int(math.floor(float(probability) * 100.0 + 100.0 * SLACK))


def shown_classes(probs: np.ndarray, class_names: Sequence[str], k: int,
                  among: np.ndarray | None = None) -> list[tuple[str, float]]:
    """Up to ``k`` best classes (of ``among``, default all) at ``MIN_SHOWN`` or more, best first: fewer
    when fewer are that likely."""
    probs = np.asarray(probs, dtype=np.float64)
    candidates = np.arange(len(probs)) if among is None else np.asarray(among)
    order = candidates[np.argsort(-probs[candidates], kind="stable")][:k]
    return [(class_names[c], float(probs[c])) for c in order if probs[c] >= MIN_SHOWN]


def short_name(name: str) -> str:
    """The first synonym of an ImageNet-style name ("tabby, tabby cat" -> "tabby")."""
    return name.split(",")[0].strip()


@dataclass(frozen=True)
class Label:
    """What a node is called. ``name`` is '' when uncertain (or without a classifier); ``probability`` is
    the named class's or family's mass; ``guess``/``guess_probability`` are the top class, always given;
    ``class_index`` is the named class (-1 when a family is named, or nothing); ``members`` are, for a
    named family, its classes that make up the number (at ``MIN_SHOWN`` or more, best first)."""

    name: str
    probability: float
    guess: str
    guess_probability: float
    class_index: int
    members: tuple[tuple[str, float], ...] = ()

    @property
    def family(self) -> bool:
        """Whether a family (not a single class) is named."""
        return bool(self.name) and self.class_index < 0

    @property
    def certain(self) -> bool:
        return bool(self.name)

    @property
    def word(self) -> str:
        """The name, or 'uncertain' ('no classifier' without classes): what a segment is called."""
        if self.name:
            return self.name
        return UNCERTAIN if self.guess else "no classifier"

    @property
    def text(self) -> str:
        """The name with its probability, or "uncertain (monarch 4%)" (the top class as a guess, left out
        under 1%): what every view shows. Percentages are rounded down (``percent``)."""
        if self.name:
            return f"{self.name} {percent(self.probability)}%"
        if not self.guess:
            return "no classifier"
        if percent(self.guess_probability) < 1:
            return UNCERTAIN
        return f"{UNCERTAIN} ({self.guess} {percent(self.guess_probability)}%)"


@lru_cache(maxsize=8)
def _family_tree(class_names: tuple[str, ...]) -> ClassHierarchy | None:
    tree = imagenet_hierarchy()
    return tree if class_names == tree.names[: tree.num_classes] else None


def family_tree(class_names: Sequence[str]) -> ClassHierarchy | None:
    """The WordNet tree over ``class_names`` when they are ImageNet-1k's (in order), else None."""
    return _family_tree(tuple(class_names))


def label(probs: np.ndarray, class_names: Sequence[str], threshold: float = NAME_THRESHOLD) -> Label:
    """Name a (C,) distribution over ``class_names`` by the rule above."""
    if len(class_names) == 0:
        return Label("", 0.0, "", 0.0, -1)
    probs = np.asarray(probs, dtype=np.float64)
    best = int(probs.argmax())
    guess, guess_probability = short_name(class_names[best]), float(probs[best])
    tree = family_tree(class_names)
    if tree is None:
        if guess_probability >= threshold - SLACK:
            return Label(guess, guess_probability, guess, guess_probability, best)
        return Label("", 0.0, guess, guess_probability, -1)
    synset, mass = tree.name(probs, threshold)
    if synset < 0:
        return Label("", 0.0, guess, guess_probability, -1)
    if synset < tree.num_classes:
        return Label(short_name(tree.names[synset]), float(mass), guess, guess_probability, synset)
    members = tuple(shown_classes(probs, class_names, len(probs), among=tree.members(synset)))
    return Label(tree.families[synset], float(mass), guess, guess_probability, -1, members)


def node_label(hierarchy: Hierarchy, node: NodeLike) -> Label:
    """The label of one node of ``hierarchy`` (the root, ``-1:0``, is the whole photo's prediction)."""
    if not hierarchy.n_classes:
        return label(np.zeros(0), [])
    return label(hierarchy.evidence_of(node), hierarchy.class_names)
