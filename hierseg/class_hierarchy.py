"""The WordNet ancestry of the ImageNet-1k classes, and naming a distribution as specifically as it supports.

ImageNet's 1000 classes are leaves of WordNet. When no leaf is likely but a family is (twelve dog breeds
sharing 85%), the honest name is the family's: "dog". ``hierseg/data/imagenet_hierarchy.json`` (made by
``tools/imagenet_wordnet.py`` from WordNet 3.0) gives each class its chain of first hypernyms up to
'entity', so the ancestry is a tree and a synset's probability is the sum of its classes' probabilities.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

DATA_FILE = Path(__file__).resolve().parent / "data" / "imagenet_hierarchy.json"
# A synset over at least this share of the vocabulary says too little to show ("artifact", "instrumentality", "animal").
MAX_NAMEABLE_SHARE = 0.25


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
    """

    wnids: tuple[str, ...]
    names: tuple[str, ...]
    parent: np.ndarray
    num_classes: int
    depth: np.ndarray = field(init=False, repr=False)
    size: np.ndarray = field(init=False, repr=False)
    nameable: np.ndarray = field(init=False, repr=False)
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
        size = np.rint(self.mass(np.eye(self.num_classes, dtype=np.float32)).sum(0)).astype(np.int64)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "nameable", size < MAX_NAMEABLE_SHARE * self.num_classes)
        object.__setattr__(self, "root", int(np.flatnonzero(self.parent < 0)[0]))
        has_parent = np.flatnonzero(self.parent >= 0)
        order = has_parent[np.argsort(self.parent[has_parent], kind="stable")]
        object.__setattr__(self, "_children", order)
        counts = np.bincount(self.parent[has_parent], minlength=len(self.parent))
        object.__setattr__(self, "_child_start", np.concatenate([[0], np.cumsum(counts)]))

    @classmethod
    def from_json(cls, path: str | Path = DATA_FILE) -> ClassHierarchy:
        """Read the data file ``tools/imagenet_wordnet.py`` writes."""
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
        return cls(tuple(wnids), tuple(names), parent, len(classes))

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

    def name(self, probs: np.ndarray, threshold: float) -> Name:
        """The most specific synset whose probability clears ``threshold``.

        From the root, step to the child with the largest mass while that mass is at least
        ``threshold``; the synset reached is named if it covers under ``MAX_NAMEABLE_SHARE`` of the
        classes. (For a threshold above 0.5 this is simply the deepest synset that clears it.)
        Otherwise ``Name(-1, top class probability)``: the label reads 'uncertain'.
        """
        probs = np.asarray(probs, dtype=np.float64)
        mass = self.mass(probs)
        node = self.root
        while True:
            start, stop = self._child_start[node], self._child_start[node + 1]
            if start == stop:
                break
            children = self._children[start:stop]
            best = children[np.argmax(mass[children])]
            if mass[best] < threshold:
                break
            node = int(best)
        if mass[node] < threshold or not self.nameable[node]:
            return Name(-1, float(probs.max()))
        return Name(node, float(mass[node]))

    def is_under(self, synset: int, cls: int) -> bool:
        """True when class ``cls`` lies under ``synset`` (or is it)."""
        return synset in self.ancestors(cls)


@lru_cache(maxsize=1)
def imagenet_hierarchy() -> ClassHierarchy:
    """The shipped WordNet ancestry of the ImageNet-1k classes (``hierseg.class_names`` order)."""
    return ClassHierarchy.from_json(DATA_FILE)
