"""A node of a part-whole tree: its level and its id there; the whole-image root is ``ROOT``."""
from __future__ import annotations

from typing import NamedTuple, Union

__all__ = ["Node", "NodeLike", "ROOT"]


class Node(NamedTuple):
    """A node of the tree: ``level`` (0 = coarsest, -1 = the whole-image root) and its id there."""

    level: int
    index: int

    def __str__(self) -> str:
        return f"{self.level}:{self.index}"

    @classmethod
    def parse(cls, text: str) -> Node:
        """Inverse of ``str(node)``: ``Node.parse("2:5") == Node(2, 5)``."""
        level, sep, index = text.strip().partition(":")
        try:
            if not sep:
                raise ValueError
            return cls(int(level), int(index))
        except ValueError:
            raise ValueError(f"not a node id: {text!r}; expected 'level:index', e.g. '2:5'") from None


ROOT = Node(-1, 0)
NodeLike = Union[Node, str, tuple[int, int]]
