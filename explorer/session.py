"""One person's exploration of one segmented photo: what is selected, at which level, shown how.

A ``Session`` is immutable state; every action (a click on the photo, the tree, the breadcrumb or
the table, Up, the keyboard, the level strip, the API) returns a new one through ``drill_to`` or
``set_level``, so the photo, the tree and the evidence always describe the same node. Selections
are chain heads of the collapsed tree (``ChainTree``): a click always reveals something new. What
is drawn from a session (colours, the photo at display size) is ``explorer.display``'s, never
stored here.

Pure numpy (no gradio); node ids are ``str(Node)``, the whole-image root is ``"-1:0"``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from hierseg.hierarchy import ROOT, Hierarchy, Node, NodeLike

from .chains import ChainTree
from .display import canvas

__all__ = [
    "VERSIONS",
    "Display",
    "Session",
    "changed_levels",
    "click_targets",
    "click_to_node",
    "drill_to",
    "go_up",
    "new_session",
    "set_display",
    "set_level",
    "show_version",
    "step_sibling",
    "tree_click_target",
    "with_refinement",
]

# The two trees of a refined photo, as the before/after toggle names them.
VERSIONS = ("first", "refined")


@dataclass(frozen=True)
class Display:
    """How the photo is drawn: colour weight, outlines without tint, dimming outside the selection."""

    opacity: float = 0.5
    outlines_only: bool = False
    dim: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.opacity <= 1.0:
            raise ValueError(f"opacity must be in [0, 1], got {self.opacity}")


@dataclass(frozen=True, eq=False)
class Session:
    """A segmented photo and where its exploration stands (CPU numpy data only).

    Attributes:
        hierarchy: the tree of the photo.
        rgb: the (H, W, 3) uint8 working image the hierarchy refers to.
        chains: the collapsed tree the selection moves in (built once per hierarchy, with it).
        selected: the chain head whose parts are shown.
        level: the level whose segments are coloured (at least the selection's parts level).
        checkpoint, name, key: the checkpoint used, the photo's file name, a digest of its bytes.
        display: drawing options.
        version: which tree of the photo this is, "first" or "refined" (``VERSIONS``).
        alternate: after a refinement, the photo's other tree (its own ``alternate`` is None).
    """

    hierarchy: Hierarchy
    rgb: np.ndarray
    chains: ChainTree
    selected: Node = ROOT
    level: int = 0
    checkpoint: str = ""
    name: str = "photo"
    key: str = ""
    display: Display = field(default_factory=Display)
    version: str = VERSIONS[0]
    alternate: "Session | None" = None


def new_session(hierarchy: Hierarchy, rgb: np.ndarray, checkpoint: str = "", name: str = "photo", key: str = "") -> Session:
    """A fresh session: the whole image selected, its coarsest split shown."""
    if rgb.shape[:2] != hierarchy.shape:
        raise ValueError(f"image is {rgb.shape[1]}x{rgb.shape[0]}, hierarchy is {hierarchy.image_size}")
    chains = ChainTree(hierarchy)
    root = chains.head(ROOT)
    return Session(hierarchy, rgb, chains, selected=root, level=chains.parts_level(root), checkpoint=checkpoint,
                   name=name, key=key)


def with_refinement(first: Session, refined: Hierarchy) -> Session:
    """The refined tree of the photo in place of the first one, which is kept for the before/after toggle.

    The selection moves to the refined tree's segment that covers most of the selected one, so the
    two answers about one segment can be compared.
    """
    after = new_session(refined, first.rgb, first.checkpoint, first.name, first.key)
    base = first if first.version == VERSIONS[0] else first.alternate
    if base is None:
        raise ValueError("a refined session must keep its first tree")
    after = replace(after, display=first.display, version=VERSIONS[1], alternate=replace(base, alternate=None))
    return _carry_selection(first, after)


def changed_levels(session: Session) -> list[int]:
    """Levels whose segments differ between the photo's two trees ([] before a refinement).

    Segments are compared as regions: the canonical numbering may differ for the same cut.
    """
    if session.alternate is None:
        return []
    ours, theirs = session.hierarchy.label_maps, session.alternate.hierarchy.label_maps
    if len(ours) != len(theirs):
        return list(range(max(len(ours), len(theirs))))
    return [level for level, (a, b) in enumerate(zip(ours, theirs, strict=True)) if not _same_partition(a, b)]


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two label maps cut the image into the same segments, whatever their ids."""
    pairs = a.astype(np.int64) * (int(b.max()) + 1) + b
    n_pairs = len(np.unique(pairs))
    return n_pairs == len(np.unique(a)) == len(np.unique(b))


def show_version(session: Session, version: str) -> Session:
    """Show the photo's ``version`` tree ("first" or "refined"), keeping the display options and the selection.

    Raises:
        ValueError: unknown version, or no such tree (the photo was not refined).
    """
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}, not {version!r}")
    if version == session.version:
        return session
    if session.alternate is None:
        raise ValueError("this photo has no refined tree yet: refine it first")
    other = replace(session.alternate, display=session.display, alternate=replace(session, alternate=None))
    return _carry_selection(session, other)


def _carry_selection(source: Session, target: Session) -> Session:
    """``target`` with the segment of its own tree that covers most of ``source``'s selection selected."""
    node = source.selected
    if node == ROOT:
        return target
    labels = target.hierarchy.label_maps[node.level][source.hierarchy.label_maps[node.level] == node.index]
    if labels.size == 0:
        return target
    counterpart = Node(node.level, int(np.bincount(labels).argmax()))
    moved = drill_to(target, counterpart)
    return replace(moved, level=max(source.level, moved.level))


def drill_to(session: Session, node: NodeLike) -> Session:
    """Select ``node`` (a ``Node``, ``(level, index)`` or ``"level:index"``; any node of a chain) and show its parts.

    Raises:
        ValueError: if the node is not in the hierarchy.
    """
    head = session.chains.head(node)
    return replace(session, selected=head, level=session.chains.parts_level(head))


def go_up(session: Session) -> Session:
    """Select the parent of the selection; at the root nothing changes."""
    if session.selected == session.chains.head(ROOT):
        return session
    return drill_to(session, session.chains.parent(session.selected))


def set_level(session: Session, level: int) -> Session:
    """Colour the segments of ``level``.

    Finer than the selection's parts: inside the selection. Coarser: the selection would hide
    them, so the whole image is selected and shown at that level (the granularity control).

    Raises:
        ValueError: if ``level`` is not a level of the hierarchy.
    """
    level = int(level)
    if not 0 <= level <= session.hierarchy.leaf_level:
        raise ValueError(f"level {level} is outside 0..{session.hierarchy.leaf_level}")
    chains = session.chains
    if level >= chains.parts_level(session.selected):
        return replace(session, level=level)
    root = chains.head(ROOT)
    return replace(session, selected=root, level=max(level, chains.parts_level(root)))


def step_sibling(session: Session, step: int) -> Session:
    """Select the next (``step`` > 0) or previous sibling of the selection, wrapping around; keeps a finer level."""
    siblings = session.chains.siblings(session.selected)
    target = siblings[(siblings.index(session.selected) + step) % len(siblings)]
    moved = drill_to(session, target)
    return replace(moved, level=max(session.level, moved.level))


def set_display(session: Session, display: Display) -> Session:
    """The same view drawn with other options."""
    return replace(session, display=display)


def click_targets(session: Session) -> list[Node]:
    """For every superpixel, the node a click on it selects: the one hit-test rule.

    Inside the selection it is the coloured segment there (at the level shown); in the dimmed area
    outside, the segment of the selection's own level, so a click beside the selection moves to its
    neighbour at the same granularity. Every level's segment is a union of superpixels, so the
    superpixel under the pointer decides; the page hit-tests hovers with this same list.
    """
    hierarchy, chains, selected = session.hierarchy, session.chains, session.selected
    leaf = hierarchy.leaf_level
    # ids[l][s]: the level-l segment holding superpixel s
    ids = [np.empty(0, np.int64)] * hierarchy.n_levels
    ids[leaf] = np.arange(hierarchy.n_nodes(leaf))
    for level in range(leaf, 0, -1):
        ids[level - 1] = hierarchy.parents[level][ids[level]]
    inside = np.ones(len(ids[leaf]), bool) if selected == ROOT else ids[selected.level] == selected.index
    levels = np.where(inside, session.level, selected.level)
    return [chains.head(Node(int(level), int(ids[level][s]))) for s, level in enumerate(levels)]


def click_to_node(session: Session, x: float, y: float) -> Node:
    """The node a click at pixel ``(x, y)`` of the shown photo (display size) selects (``click_targets``)."""
    shown = canvas(session.chains, session.rgb).label_maps[-1]
    height, width = shown.shape
    col = min(max(int(x), 0), width - 1)
    row = min(max(int(y), 0), height - 1)
    return click_targets(session)[int(shown[row, col])]


def tree_click_target(session: Session, node_id: str) -> Node:
    """The node a click on the tree selects: the clicked sector, or one up for the selection itself.

    The sunburst's centre is the selection (its parent for a superpixel); clicking the selection
    goes up, as plotly's own zoom-out does.
    """
    node = session.chains.head(node_id)
    if node == session.selected and node != session.chains.head(ROOT):
        return session.chains.parent(node)
    return node
