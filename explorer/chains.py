"""The tree as the explorer shows it: chains of single children collapsed into one node.

In a CAST hierarchy a segment often has exactly one child (the same pixels again, one level finer).
Shown as is, a click on it reveals nothing new. A ``ChainTree`` groups each maximal run
``n -> only child -> only child ...`` into one *chain*; the chain is named by its coarsest node, the
*head*, and its children are the children of its finest node, the *bottom*. The ``Hierarchy`` keeps
all its levels; only the views and the API walk the collapsed tree. Every non-bottom node of a chain
has one child, so the collapsed tree never has a node with exactly one child, except a chain whose
bottom is a superpixel, which has none.
"""
from __future__ import annotations

from hierseg.hierarchy import ROOT, Hierarchy, Node, NodeLike

__all__ = ["ChainTree"]


class ChainTree:
    """Single-child chains of a ``Hierarchy`` (computed once, in O(number of nodes)).

    The root is a chain head too: when the image has a single coarsest segment, the root's chain
    runs down to the first level where the image splits.
    """

    def __init__(self, hierarchy: Hierarchy) -> None:
        self.hierarchy = hierarchy
        self._head: dict[Node, Node] = {}
        self._bottom: dict[Node, Node] = {}
        # Walk from the root down: a node is a chain head unless its parent has it as its only child.
        stack = [ROOT]
        while stack:
            head = stack.pop()
            chain = [head]
            while len(children := hierarchy.children(chain[-1])) == 1:
                chain.append(children[0])
            for node in chain:
                self._head[node] = head
                self._bottom[node] = chain[-1]
            stack.extend(reversed(hierarchy.children(chain[-1])))

    def head(self, node: NodeLike) -> Node:
        """The coarsest node of ``node``'s chain: the id the views use for the whole chain."""
        return self._head[self.hierarchy.node(node)]

    def bottom(self, node: NodeLike) -> Node:
        """The finest node of ``node``'s chain (the one whose children are shown)."""
        return self._bottom[self.hierarchy.node(node)]

    def chain(self, node: NodeLike) -> list[Node]:
        """Every node of ``node``'s chain, head first: the nodes that cover exactly the same pixels."""
        head = self.head(node)
        nodes = [head]
        while nodes[-1] != self._bottom[head]:
            nodes.append(self.hierarchy.children(nodes[-1])[0])
        return nodes

    def children(self, node: NodeLike) -> list[Node]:
        """Heads of the chains one split finer: never exactly one; [] when the chain ends in a superpixel."""
        return self.hierarchy.children(self.bottom(node))

    def parent(self, node: NodeLike) -> Node:
        """Head of the chain that splits into ``node``'s chain (the root's chain for a coarsest segment)."""
        head = self.head(node)
        if head == ROOT:
            raise ValueError("the root has no parent")
        return self.head(self.hierarchy.parent(head))

    def path(self, node: NodeLike) -> list[Node]:
        """Heads from the root's chain down to ``node``'s chain, both included."""
        heads = [self.head(node)]
        while heads[-1] != self.head(ROOT):
            heads.append(self.parent(heads[-1]))
        return heads[::-1]

    def is_leaf(self, node: NodeLike) -> bool:
        """True when ``node``'s chain ends in a superpixel (nothing finer to reveal)."""
        return self.hierarchy.is_leaf(self.bottom(node))

    def siblings(self, node: NodeLike) -> list[Node]:
        """The heads sharing ``node``'s parent chain, in id order, ``node``'s own head included."""
        head = self.head(node)
        return [head] if head == ROOT else self.children(self.parent(head))

    def parts_level(self, node: NodeLike) -> int:
        """The level whose segments are ``node``'s parts: its children's, or the superpixels' for a leaf chain."""
        return min(self.bottom(node).level + 1, self.hierarchy.leaf_level)

    def shown_at(self, node: NodeLike, level: int) -> list[Node]:
        """Heads of the chains that hold the level-``level`` segments inside ``node`` (one per segment).

        ``level`` must be at least ``parts_level(node)``; the result is in the order of a depth-first
        walk, which is the order of the tree's cells in that level's column.
        """
        if level < self.parts_level(node):
            raise ValueError(f"level {level} is coarser than the parts of {node} (level {self.parts_level(node)})")
        if self.is_leaf(node) and self.bottom(node).level == level:
            return [self.head(node)]  # a superpixel shows itself
        out: list[Node] = []
        stack = [self.head(node)]
        first = True
        while stack:
            current = stack.pop()
            bottom = self._bottom[current]
            # A chain reaching ``level`` is one segment there; the selection itself is always opened.
            if not first and (bottom.level >= level or self.hierarchy.is_leaf(bottom)):
                out.append(current)
            else:
                stack.extend(reversed(self.hierarchy.children(bottom)))
            first = False
        return out
