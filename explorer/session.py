"""One person's exploration of one segmented photo: what is selected, at which level, shown how.

A ``Session`` is immutable state; every action (a click on the photo, the tree, the breadcrumb or
the table, Up, the keyboard, the level strip, the granularity control, the API) returns a new one
through ``drill_to``, ``set_level`` or ``set_granularity``, so the photo, the tree and the evidence
always describe the same node. Selections
are chain heads of the collapsed tree (``ChainTree``): a click always reveals something new. A
selection can hold several disjoint segments (``toggle_segment``, ``toggle_at``: Ctrl/Shift-click or the
"Add to selection" switch), shown and named as one region; any other move returns to one segment. What
is drawn from a session (colours, the photo at display size) is ``explorer.display``'s, never
stored here.

Pure numpy (no gradio); node ids are ``str(Node)``, the whole-image root is ``"-1:0"``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from hierseg.hierarchy import ROOT, Hierarchy, Node, NodeLike

from . import granularity as cuts
from .chains import ChainTree
from .display import canvas

__all__ = [
    "Carried",
    "Display",
    "Session",
    "click_targets",
    "click_to_node",
    "drill_to",
    "go_up",
    "new_session",
    "select_segments",
    "set_display",
    "set_granularity",
    "set_level",
    "step_sibling",
    "superpixel_ancestors",
    "toggle_at",
    "toggle_segment",
    "tree_click_target",
]

@dataclass(frozen=True)
class Display:
    """How the photo is drawn: colour weight, outlines without tint, dimming outside the selection."""

    opacity: float = 0.5
    outlines_only: bool = False
    dim: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.opacity <= 1.0:
            raise ValueError(f"opacity must be in [0, 1], got {self.opacity}")


@dataclass(frozen=True)
class Carried:
    """The selection the granularity control carries from cut to cut.

    ``superpixels`` are those of the selection a person made (every cut of a tree has the same
    superpixels); ``shown`` is the node the last move selected for them. Once the selection is
    anything else, a person chose it, and the next move carries that one.
    """

    superpixels: tuple[int, ...]
    shown: Node


@dataclass(frozen=True, eq=False)
class Session:
    """A segmented photo and where its exploration stands (CPU numpy data only).

    Attributes:
        hierarchy: the tree of the photo as shown (``source`` re-cut when the granularity was moved).
        rgb: the (H, W, 3) uint8 working image the hierarchy refers to.
        chains: the collapsed tree the selection moves in (built once per hierarchy, with it).
        source: the tree as the model gave it; the granularity control always re-cuts this one, so
            repeated moves never drift.
        height: the merge height ``hierarchy``'s coarsest level is cut at; None for a tree with fixed
            levels (no merge tree: no granularity control).
        carried: what the granularity control carries (``set_granularity``); None before a move.
        selected: the chain head whose parts are shown.
        also: further chain heads selected with it (a selection of several disjoint segments, taken as
            one region: ``members``); empty for one segment.
        level: the level whose segments are coloured (at least the selection's parts level).
        checkpoint, name, key: the checkpoint used, the photo's file name, a digest of its bytes.
        display: drawing options.
    """

    hierarchy: Hierarchy
    rgb: np.ndarray
    chains: ChainTree
    source: Hierarchy
    height: float | None = None
    selected: Node = ROOT
    level: int = 0
    checkpoint: str = ""
    name: str = "photo"
    key: str = ""
    display: Display = field(default_factory=Display)
    carried: Carried | None = None
    also: tuple[Node, ...] = ()

    @property
    def members(self) -> list[Node]:
        """The selected segments: ``selected`` then ``also`` (just ``selected`` for one segment)."""
        return [self.selected, *self.also]


def new_session(hierarchy: Hierarchy, rgb: np.ndarray, checkpoint: str = "", name: str = "photo", key: str = "") -> Session:
    """A fresh session: the whole image selected, its coarsest split shown.

    A tree with a granularity control is shown cut on the control's grid (``granularity.default_position``,
    next to the model's own cut), so the control returns to exactly this tree.
    """
    if rgb.shape[:2] != hierarchy.shape:
        raise ValueError(f"image is {rgb.shape[1]}x{rgb.shape[0]}, hierarchy is {hierarchy.image_size}")
    shown, height = hierarchy, None
    if hierarchy.merge_tree is not None:
        height = hierarchy.cut_heights[0]
        if cuts.has_granularity(hierarchy):
            height = cuts.height_at(hierarchy, cuts.default_position(hierarchy))
            shown = hierarchy.recut(height)
    chains = ChainTree(shown)
    root = chains.head(ROOT)
    return Session(shown, rgb, chains, hierarchy, height, selected=root, level=chains.parts_level(root),
                   checkpoint=checkpoint, name=name, key=key)


def drill_to(session: Session, node: NodeLike) -> Session:
    """Select ``node`` (a ``Node``, ``(level, index)`` or ``"level:index"``; any node of a chain) and show its parts.

    Raises:
        ValueError: if the node is not in the hierarchy.
    """
    head = session.chains.head(node)
    return replace(session, selected=head, level=session.chains.parts_level(head), also=())


def go_up(session: Session) -> Session:
    """Select the parent of the selection; at the root nothing changes. A selection of several segments goes
    back to its first one."""
    if session.also:
        return replace(session, also=())
    if session.selected == session.chains.head(ROOT):
        return session
    return drill_to(session, session.chains.parent(session.selected))


def set_level(session: Session, level: int) -> Session:
    """Colour the segments of ``level``.

    Finer than the selection's parts: inside the selection. Coarser: the selection would hide
    them, so its nearest ancestor whose parts are that coarse is selected instead (the one that
    shows the selection's own segment of ``level`` among its siblings); the whole image only when
    no smaller ancestor does.

    Raises:
        ValueError: if ``level`` is not a level of the hierarchy.
    """
    level = int(level)
    if not 0 <= level <= session.hierarchy.leaf_level:
        raise ValueError(f"level {level} is outside 0..{session.hierarchy.leaf_level}")
    chains = session.chains
    if level >= chains.parts_level(session.selected):
        return replace(session, level=level)
    path = chains.path(session.selected)
    ancestor = next((node for node in reversed(path[:-1]) if chains.parts_level(node) <= level), path[0])
    return replace(session, selected=ancestor, level=max(level, chains.parts_level(ancestor)), also=())


def set_granularity(session: Session, height: float) -> Session:
    """The photo's tree re-cut with its coarsest level at merge height ``height`` (``Hierarchy.recut`` of
    ``session.source``), the selection carried over.

    The new selection is the smallest segment of the new tree holding all of the selection's
    superpixels: the selection itself where the cut keeps it, its ancestor where the cut is coarser.
    Where the new coarsest segments split the selection, only the whole image holds it all, so the
    coarsest segment holding most of it is selected instead: only a selected whole image stays the
    whole image. The selection carried is the one a person made (``Carried``): a drag through many
    heights and back ends where it started. The level follows: the new selection's parts, or a finer
    level if one was shown.

    Raises:
        ValueError: the tree has fixed levels (no merge tree), or ``height`` is outside the source's
            ``height_range()`` (a float's last digits of slack allowed).
    """
    if session.source.merge_tree is None:
        raise ValueError("this tree has fixed levels: its checkpoint keeps no merge tree to re-cut")
    low, high = session.source.height_range()
    height = float(height)
    if not low * (1 - 1e-9) <= height <= high * (1 + 1e-9):
        raise ValueError(f"merge height {height:g} is outside this photo's range [{low:.6g}, {high:.6g}] "
                         "(granularity.height_range)")
    tree = session.source.recut(height)
    carried = session.carried
    if carried is None or carried.shown != session.selected:  # a selection made since the last move
        carried = Carried(_superpixels(session.hierarchy, session.selected), session.selected)
    chains = ChainTree(tree)
    head = chains.head(_holding(tree, carried.superpixels))
    parts = chains.parts_level(head)
    finer = session.level > session.chains.parts_level(session.selected)
    level = min(max(session.level, parts), tree.leaf_level) if finer else parts
    return replace(session, hierarchy=tree, chains=chains, height=height, selected=head, level=level,
                   carried=replace(carried, shown=head), also=())


def _superpixels(tree: Hierarchy, node: Node) -> tuple[int, ...]:
    """The superpixels of ``node`` (every one for the root)."""
    ids = superpixel_ancestors(tree)
    if node == ROOT:
        return tuple(range(len(ids[-1])))
    return tuple(np.flatnonzero(ids[node.level] == node.index).tolist())


def _holding(tree: Hierarchy, superpixels: tuple[int, ...]) -> Node:
    """The smallest node of ``tree`` holding all ``superpixels``; the coarsest segment holding most of their
    area when only the whole image holds them all."""
    members = np.asarray(superpixels, np.int64)
    ids = superpixel_ancestors(tree)
    for level in range(tree.leaf_level, -1, -1):
        holders = np.unique(ids[level][members])
        if len(holders) == 1:
            return Node(level, int(holders[0]))
    if len(members) == len(ids[-1]):
        return ROOT
    areas = tree.areas(tree.leaf_level)[members]
    return Node(0, int(np.bincount(ids[0][members], weights=areas).argmax()))


def step_sibling(session: Session, step: int) -> Session:
    """Select the next (``step`` > 0) or previous sibling of the selection, wrapping around; keeps a finer level."""
    siblings = session.chains.siblings(session.selected)
    target = siblings[(siblings.index(session.selected) + step) % len(siblings)]
    moved = drill_to(session, target)
    return replace(moved, level=max(session.level, moved.level))


def set_display(session: Session, display: Display) -> Session:
    """The same view drawn with other options."""
    return replace(session, display=display)


def superpixel_ancestors(hierarchy: Hierarchy) -> list[np.ndarray]:
    """Per level ``l``, (n_superpixels,) the id of the level-``l`` segment holding each superpixel."""
    leaf = hierarchy.leaf_level
    ids = [np.empty(0, np.int64)] * hierarchy.n_levels
    ids[leaf] = np.arange(hierarchy.n_nodes(leaf))
    for level in range(leaf, 0, -1):
        ids[level - 1] = hierarchy.parents[level][ids[level]]
    return ids


def click_targets(session: Session) -> list[Node]:
    """For every superpixel, the node a click on it selects: the one hit-test rule.

    Inside the selection it is the coloured segment there (at the level shown); in the dimmed area
    outside, the segment of the selection's own level, so a click beside the selection moves to its
    neighbour at the same granularity. Every level's segment is a union of superpixels, so the
    superpixel under the pointer decides; the page hit-tests hovers with this same list.
    """
    hierarchy, chains, selected = session.hierarchy, session.chains, session.selected
    ids = superpixel_ancestors(hierarchy)
    leaf = hierarchy.leaf_level
    inside = np.ones(len(ids[leaf]), bool) if selected == ROOT else ids[selected.level] == selected.index
    levels = np.where(inside, session.level, selected.level)
    return [chains.head(Node(int(level), int(ids[level][s]))) for s, level in enumerate(levels)]


def click_to_node(session: Session, x: float, y: float) -> Node:
    """The node a click at pixel ``(x, y)`` of the shown photo (display size) selects (``click_targets``)."""
    return click_targets(session)[_superpixel_at(session, x, y)]


def _superpixel_at(session: Session, x: float, y: float) -> int:
    """The superpixel at pixel ``(x, y)`` of the shown photo (display size), clamped to the photo."""
    shown = canvas(session.chains, session.rgb).label_maps[-1]
    height, width = shown.shape
    col = min(max(int(x), 0), width - 1)
    row = min(max(int(y), 0), height - 1)
    return int(shown[row, col])


def toggle_segment(session: Session, node: NodeLike) -> Session:
    """Add ``node`` (its chain) to the selection, or take it out when it is a member: a selection of several
    disjoint segments, shown and named as one region (``Hierarchy.union_evidence``).

    A member that overlaps the new segment (one inside the other) gives way to it, so the members stay
    disjoint. With the whole image selected, the segment is selected alone; taking out the only member
    changes nothing. The first member stays the one whose parts are shown.

    Raises:
        ValueError: for the whole image or a node not in the hierarchy.
    """
    chains, hierarchy = session.chains, session.hierarchy
    head = chains.head(node)
    if head == chains.head(ROOT):
        raise ValueError("the whole image cannot join a selection of segments")
    current = [] if session.selected == chains.head(ROOT) else session.members
    if head in current:
        kept = [member for member in current if member != head]
        if not kept:
            return session
    else:
        kept = [m for m in current if m not in hierarchy.path(head) and head not in hierarchy.path(m)] + [head]
    if len(kept) > 1 and hierarchy.n_classes and hierarchy.leaf_log_evidence is None:
        raise ValueError("this tree keeps no per-superpixel evidence (its checkpoint reads out fixed levels), so "
                         "several segments cannot be named as one; select one segment")
    first = drill_to(session, kept[0]) if kept[0] != session.selected else session
    return replace(first, also=tuple(kept[1:]))


def select_segments(session: Session, nodes: list[NodeLike]) -> Session:
    """Select ``nodes`` together, as one region (what Ctrl-clicks build; any node of a chain stands for the chain).

    Raises:
        ValueError: for no node, the whole image, a node not in the hierarchy, overlapping nodes, or several
            nodes of a tree without per-superpixel evidence.
    """
    heads = [session.chains.head(node) for node in nodes]
    session.hierarchy.union_mask(heads)  # the members must be disjoint segments
    selection = drill_to(session, heads[0])
    for head in heads[1:]:
        selection = toggle_segment(selection, head)
    return selection


def toggle_at(session: Session, x: float, y: float) -> Session:
    """Ctrl/Shift-click at pixel ``(x, y)`` of the shown photo: a member of the selection under the pointer
    leaves it; elsewhere the segment a click there would select joins it (``toggle_segment``)."""
    superpixel = _superpixel_at(session, x, y)
    ids = superpixel_ancestors(session.hierarchy)
    if session.selected != session.chains.head(ROOT):
        for member in session.members:
            if ids[member.level][superpixel] == member.index:
                return toggle_segment(session, member)
    return toggle_segment(session, click_targets(session)[superpixel])


def tree_click_target(session: Session, node_id: str) -> Node:
    """The node a click on the tree selects: the clicked cell's chain, or one up for the selection itself.

    Any cell of a chain stands for the chain; a second click on the selection goes up, so the tree
    alone can walk both ways.
    """
    node = session.chains.head(node_id)
    if node == session.selected and node != session.chains.head(ROOT):
        return session.chains.parent(node)
    return node
