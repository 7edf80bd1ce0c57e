"""The WordNet ancestry of the ImageNet-1k classes, and naming a distribution as specifically as it supports.

ImageNet's 1000 classes are leaves of WordNet. When no leaf is likely but a family is (twelve dog breeds
sharing 85%), the honest name is the family's: "dog". ``hierseg/data/imagenet_hierarchy.json`` (made by
``tools/imagenet_wordnet.py`` from WordNet 3.0) gives each class its chain of first hypernyms up to
'entity', so the ancestry is a tree and a synset's probability is the sum of its classes' probabilities.

Only the families listed in ``hierseg/data/name_families.json`` may name anything: basic-level
categories a person would call a thing by ("dog", "car", "musical instrument"), each with the reason
it is listed. Upper categories ("implement", "device", "placental", "structure") gather unrelated
classes until they pass any threshold, and never name anything.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

DATA_FILE = Path(__file__).resolve().parent / "data" / "imagenet_hierarchy.json"
FAMILIES_FILE = Path(__file__).resolve().parent / "data" / "name_families.json"
# Evidence is float32 (0.9 is stored as 0.89999998): a probability this close under a threshold reaches it,
# and hierseg.naming.percent rounds with the same slack, so a stated name and its percentage agree.
SLACK = 1e-6


class Name(NamedTuple):
    """What a distribution is named: ``synset`` indexes ``ClassHierarchy.names`` (-1: nothing cleared the
    threshold), ``probability`` is that synset's mass (the top class's when ``synset`` is -1)."""

    synset: int
    probability: float


@dataclass(frozen=True)
class ClassHierarchy:
    """A tree over synsets: the ``num_classes`` classes first (in class-index order), then their ancestors.

    ``parent[s]`` is the index of synset s's hypernym (-1 for the root, 'entity'); ``depth[s]`` counts
    the steps from the root; ``size[s]`` is how many classes lie under s (1 for a class).
    ``families`` maps the synsets that may name a distribution to the word they are named by
    (``name_families.json``; empty: only classes are named).
    """

    wnids: tuple[str, ...]
    names: tuple[str, ...]
    parent: np.ndarray
    num_classes: int
    families: dict[int, str] = field(default_factory=dict)
    depth: np.ndarray = field(init=False, repr=False)
    size: np.ndarray = field(init=False, repr=False)
    _family_ids: np.ndarray = field(init=False, repr=False)
    _under: np.ndarray = field(init=False, repr=False)  # (num_classes, synsets) bool
    _family_members: np.ndarray = field(init=False, repr=False)  # (num_classes, families) 0/1
    root: int = field(init=False, repr=False)
    _by_depth: list[np.ndarray] = field(init=False, repr=False)  # synsets per depth, deepest first
    _children: np.ndarray = field(init=False, repr=False)  # child ids grouped by parent (CSR)
    _child_start: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        depth = np.zeros(len(self.parent), np.int64)
        for s in self._top_down():
            depth[s] = 0 if self.parent[s] < 0 else depth[self.parent[s]] + 1
        object.__setattr__(self, "depth", depth)
        object.__setattr__(self, "_by_depth", [np.flatnonzero(depth == d) for d in range(int(depth.max()), 0, -1)])
        under = self.mass(np.eye(self.num_classes, dtype=np.float32)) > 0.5  # (classes, synsets): class under synset
        object.__setattr__(self, "_under", under)
        object.__setattr__(self, "size", under.sum(0).astype(np.int64))
        ids = np.array(sorted(self.families), np.int64)
        object.__setattr__(self, "_family_ids", ids)
        object.__setattr__(self, "_family_members", under[:, ids].astype(np.float64))
        object.__setattr__(self, "root", int(np.flatnonzero(self.parent < 0)[0]))
        has_parent = np.flatnonzero(self.parent >= 0)
        order = has_parent[np.argsort(self.parent[has_parent], kind="stable")]
        object.__setattr__(self, "_children", order)
        counts = np.bincount(self.parent[has_parent], minlength=len(self.parent))
        object.__setattr__(self, "_child_start", np.concatenate([[0], np.cumsum(counts)]))

    @classmethod
    def from_json(cls, path: str | Path = DATA_FILE, families: str | Path | None = FAMILIES_FILE) -> ClassHierarchy:
        """Read the data file ``tools/imagenet_wordnet.py`` writes, and the families that may name (none when
        ``families`` is None).

        Raises:
            ValueError: a listed family is not an ancestor in the tree, or a class.
        """
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        classes = data["classes"]
        wnids = [c["wnid"] for c in classes] + sorted(data["synsets"])
        index = {w: i for i, w in enumerate(wnids)}
        names = [c["name"] for c in classes] + [data["synsets"][w] for w in wnids[len(classes):]]
        parent = np.full(len(wnids), -1, np.int64)
        for c in classes:
            chain = [c["wnid"], *c["chain"]]
            for child, up in zip(chain, chain[1:]):
                parent[index[child]] = index[up]
        named: dict[int, str] = {}
        for entry in json.loads(Path(families).read_text(encoding="utf-8"))["families"] if families else []:
            synset = index.get(entry["wnid"], -1)
            if synset < len(classes):
                raise ValueError(f"family {entry['wnid']} ({entry['name']}) is not a family of ImageNet classes")
            named[synset] = entry["name"]
        return cls(tuple(wnids), tuple(names), parent, len(classes), named)

    def _top_down(self) -> list[int]:
        order, seen = [], np.zeros(len(self.parent), bool)
        for s in range(len(self.parent)):
            stack = []
            while s >= 0 and not seen[s]:
                stack.append(s)
                s = int(self.parent[s])
            for t in reversed(stack):
                seen[t] = True
                order.append(t)
        return order

    def ancestors(self, synset: int) -> list[int]:
        """The synset's chain up to the root, itself first."""
        chain = [synset]
        while self.parent[chain[-1]] >= 0:
            chain.append(int(self.parent[chain[-1]]))
        return chain

    def mass(self, probs: np.ndarray) -> np.ndarray:
        """(..., num_classes) class probabilities -> (..., num_synsets): each synset's summed probability."""
        probs = np.asarray(probs)
        out = np.zeros((*probs.shape[:-1], len(self.parent)), dtype=probs.dtype)
        out[..., : self.num_classes] = probs
        flat = out.reshape(-1, out.shape[-1]).T  # a view: (synsets, items)
        for level in self._by_depth:
            np.add.at(flat, self.parent[level], flat[level])
        return out

    def members(self, synset: int) -> np.ndarray:
        """The classes under ``synset`` (itself for a class), in class order."""
        return np.flatnonzero(self._under[:, synset])

    def name(self, probs: np.ndarray, threshold: float) -> Name:
        """The most specific class or listed family whose probability reaches ``threshold``.

        The top class when it reaches it; else the deepest of ``families`` that does (for a threshold
        of 0.5 or more the families that reach it are nested, so that one is unique). Otherwise
        ``Name(-1, top class probability)``: the label reads 'uncertain'.
        """
        probs = np.asarray(probs, dtype=np.float64)
        best = int(probs.argmax())
        if probs[best] >= threshold - SLACK:
            return Name(best, float(probs[best]))
        mass = probs @ self._family_members
        reached = np.flatnonzero(mass >= threshold - SLACK)
        if len(reached) == 0:
            return Name(-1, float(probs[best]))
        deepest = reached[np.argmax(self.depth[self._family_ids[reached]])]
        return Name(int(self._family_ids[deepest]), float(mass[deepest]))

    def is_under(self, synset: int, cls: int) -> bool:
        """True when class ``cls`` lies under ``synset`` (or is it)."""
        return bool(self._under[cls, synset])


@lru_cache(maxsize=1)
def imagenet_hierarchy() -> ClassHierarchy:
    """The shipped WordNet ancestry of the ImageNet-1k classes (``hierseg.class_names`` order), with the
    shipped families that may name."""
    return ClassHierarchy.from_json(DATA_FILE)
