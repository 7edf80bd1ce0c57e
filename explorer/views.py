"""What the explorer shows for a ``Session``: the photo, the tree, breadcrumb, table, levels, caption.

Every view walks the same collapsed tree (``ChainTree``) and takes its colours from the tree's one
colour table (``explorer.display``), so the photo, the tree, the breadcrumb and the table always
agree: the tree's cells inside the selection, in the column of the level shown, are exactly the
segments coloured on the photo and listed in the table. Classes are stated as ``explorer.classes`` says.
A selection of several segments (``Session.members``) is outlined, lit and named as one region.
"""
from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from hierseg.hierarchy import ROOT, Node
from hierseg.render import hex_color, render_view
from hierseg.resize import fit_long_side, resize_nearest

from hierseg.naming import Label, percent

from .classes import TOP_K, VOCABULARY_NOTE, heading, node_label, segment_name, selection_heading, selection_label
from .display import Canvas, canvas, node_hex
from .session import Session, click_targets

__all__ = [
    "Panels",
    "breadcrumb_html",
    "caption_html",
    "click_targets_json",
    "granularity_label",
    "hover_detail",
    "level_choices",
    "level_strip_html",
    "overlay",
    "panels",
    "plural",
    "selection_heading_of",
    "selection_mask",
    "shown_nodes",
    "table_html",
    "segment_heading",
    "tree_centre",
    "tree_figure",
    "tree_json",
]

THUMBNAIL_SIDE = 128  # shown 64 px high: twice that for sharp screens
THUMBNAIL_OPACITY = 0.7  # flat colours with a little photo showing
TREE_FADE = 0.6  # how far a tree cell outside the selection and its path is mixed with white
UNCERTAIN_MARK = "?"  # what an uncertain cell of the tree shows: quieter than the word, which would fill the tree
EVIDENCE_TITLE = "Selected segment"  # the evidence panel's title for one segment


def plural(n: int, word: str) -> str:
    """``"1 part"``, ``"3 parts"``, ``"1 superpixel"``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _canvas(session: Session) -> Canvas:
    return canvas(session.chains, session.rgb)


def _name(session: Session, node: Node) -> str:
    return segment_name(session.hierarchy, session.chains, node)


def segment_heading(session: Session, node: Node, k: int = TOP_K) -> dict[str, Any]:
    """The ``gr.Label`` value for ``node``: its label as the heading, its ``k`` best classes below."""
    return heading(session.hierarchy, node, k)


def selection_heading_of(session: Session, k: int = TOP_K) -> dict[str, Any]:
    """The evidence panel's ``gr.Label`` value: the selection's label and classes (of the union of its members)."""
    return selection_heading(session.hierarchy, session.members, k)


def selection_mask(session: Session) -> np.ndarray | None:
    """(h, w) bool mask of the selection (all its members) at display size; None when the whole image is selected."""
    if session.selected == ROOT:
        return None
    maps = _canvas(session).label_maps
    mask = maps[session.selected.level] == session.selected.index
    for node in session.also:
        mask |= maps[node.level] == node.index
    return mask


def overlay(session: Session) -> np.ndarray:
    """The photo at display size, coloured at the session's level, the selection outlined."""
    drawn, level, options = _canvas(session), session.level, session.display
    centre = tree_centre(session)
    # A superpixel is shown among its siblings, as in the tree: the parent stays lit, the superpixel outlined.
    outline = selection_mask(session)
    if session.also:  # several segments: the region they make is lit, the rest dimmed
        lit = outline
    else:
        lit = None if centre == ROOT else drawn.label_maps[centre.level] == centre.index
    return render_view(
        drawn.rgb, drawn.label_maps[level], drawn.colours[level], lit,
        opacity=options.opacity, outlines_only=options.outlines_only, dim=options.dim,
        outline=outline,
    )


def tree_centre(session: Session) -> Node:
    """The node whose parts the photo colours and the table lists: the selection, or its parent for a superpixel."""
    chains = session.chains
    if chains.is_leaf(session.selected) and session.selected != ROOT:
        return chains.parent(session.selected)
    return session.selected


def _faded(colour: str) -> str:
    """``colour`` mixed with white: a cell outside the selection, as the photo is dimmed there."""
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], float)
    return hex_color(np.round(rgb + (255.0 - rgb) * TREE_FADE))


def _inside_selection(session: Session) -> list[np.ndarray]:
    """Per level, which nodes lie inside the selection, any of its members (all of them when the whole image
    is selected)."""
    hierarchy = session.hierarchy
    if session.selected == ROOT:
        return [np.ones(hierarchy.n_nodes(level), bool) for level in range(hierarchy.n_levels)]
    inside = [np.zeros(hierarchy.n_nodes(level), bool) for level in range(hierarchy.n_levels)]
    for node in session.members:
        inside[node.level][node.index] = True
    for level in range(1, hierarchy.n_levels):
        inside[level] |= inside[level - 1][hierarchy.parents[level]]
    return inside


def tree_figure(session: Session) -> dict[str, Any]:
    """A plotly icicle of the whole tree: the whole image on the left, then one column per level down to the superpixels.

    Every node of every level is a cell sized by its pixel area and coloured as on the photo, so a
    column is that level's segmentation and the segments the photo colours are the selection's
    cells in the column of the level shown. A chain (a segment that does not split) runs on as one
    colour, named in its first cell only; an uncertain segment shows a quiet "?" rather than the word
    (tree.js fits every name to its column: wrapped or shortened, never hidden while a "?" shows).
    The selection and its path from the root are outlined;
    cells outside them are faded, as the photo is dimmed outside the selection. Cell ids are node
    ids (a click on any cell of a chain selects the chain); ``layout.meta`` tells the page what is
    shown (``selected``, ``level``, ``centre``) and how many columns the tree has (``columns``: the
    page draws the whole image's and the superpixels' half as wide). The tooltip gives the name once,
    then the number or the guess (``hover_detail``).
    """
    hierarchy, chains, colours = session.hierarchy, session.chains, _canvas(session).colours
    total = float(hierarchy.area(ROOT))
    inside = _inside_selection(session)
    selected = {node for member in session.members for node in chains.chain(member)}
    path = {node for member in session.members for head in chains.path(member)[:-1] for node in chains.chain(head)}
    ids, parents, texts, values, colors, custom, widths, lines = [], [], [], [], [], [], [], []
    names: dict[Node, str] = {}  # by chain head: a chain's cells share its name
    stack = [ROOT]
    while stack:  # depth first, children in id order: the table's order
        node = stack.pop()
        stack.extend(reversed(hierarchy.children(node)))
        head = chains.head(node)
        if head not in names:
            names[head] = _name(session, head)
        name, area = names[head], hierarchy.area(node)
        colour = node_hex(colours, node)
        focused = node == ROOT or node in path or bool(inside[node.level][node.index])
        ids.append(str(node))
        parents.append("" if node == ROOT else str(hierarchy.parent(node)))
        stated = node_label(hierarchy, head)
        # The root's column is drawn half wide: the breadcrumb and the tooltip name it.
        # The whole image's and the superpixels' columns are drawn half wide (tree.js): no room for a name.
        narrow = node == ROOT or node.level == hierarchy.leaf_level
        texts.append("" if narrow or node != head else name if stated.certain else UNCERTAIN_MARK)
        values.append(area)
        colors.append(colour if focused else _faded(colour))
        custom.append([name, hover_detail(stated, node == ROOT), round(area / total, 4)])
        if node in selected:
            widths.append(3)
            lines.append("#111111")
        elif node in path:
            widths.append(2)
            lines.append("#555555")
        else:  # superpixels are slivers: a white edge would hide their colour
            widths.append(0 if hierarchy.is_leaf(node) else 1)
            lines.append("#ffffff")
    trace = {
        "type": "icicle",
        "ids": ids,
        "parents": parents,
        "labels": texts,
        "values": values,
        "branchvalues": "total",
        "maxdepth": -1,
        "customdata": custom,
        "marker": {"colors": colors, "line": {"width": widths, "color": lines}},
        "textinfo": "label",
        "tiling": {"orientation": "h", "pad": 0},
        "pathbar": {"visible": False},
        "hovertemplate": "<b>%{customdata[0]}</b> %{customdata[1]}<br>%{customdata[2]:.1%} of the image<extra></extra>",
        "sort": False,
    }
    layout = {
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "paper_bgcolor": "rgba(0,0,0,0)",
        # A name that does not fit is hidden, never shrunk to an unreadable size.
        "uniformtext": {"minsize": 10, "mode": "hide"},
        "font": {"size": 12},
        "meta": {"selected": str(session.selected), "level": session.level, "centre": str(tree_centre(session)),
                 "columns": hierarchy.n_levels + 1},
    }
    return {"data": [trace], "layout": layout}


def hover_detail(stated: Label, whole_image: bool = False) -> str:
    """What the tree's tooltip adds after a segment's name, without repeating it: "81%" for a named
    segment, "(best guess zebra 4%)" for an uncertain one; the photo's label for the whole image."""
    if whole_image:
        return stated.text
    if stated.certain:
        return f"{percent(stated.probability)}%"
    if stated.guess and percent(stated.guess_probability) >= 1:
        return f"(best guess {stated.guess} {percent(stated.guess_probability)}%)"
    return ""


def tree_json(session: Session) -> str:
    """``tree_figure`` as compact JSON, the value the app's tree panel draws."""
    return json.dumps(tree_figure(session), separators=(",", ":"))


def click_targets_json(session: Session) -> str:
    """``session.click_targets`` as a JSON list of node ids by superpixel: what the page hit-tests hovers with."""
    return json.dumps([str(node) for node in click_targets(session)], separators=(",", ":"))


def _swatch(colour: str) -> str:
    return f'<span class="swatch" style="background:{colour}"></span>'


def breadcrumb_html(session: Session) -> str:
    """The photo's name, then the root-to-selection path over the collapsed tree; every ancestor is a button
    carrying ``data-node``.

    A crumb whose word is the one before it ("dog" inside "dog") shows only its number, "(3)": the
    word is on screen already (the full name is its tooltip).
    """
    colours = _canvas(session).colours
    path = session.chains.path(session.selected)
    parts = []
    previous_word = ""
    for node in path:
        name = _name(session, node)
        word = name if node == ROOT else node_label(session.hierarchy, node).word
        shown = name[len(word):].strip() if word == previous_word and name != word else name
        previous_word = word
        text = html.escape(shown) if shown == name else f'<span title="{html.escape(name)}">{html.escape(shown)}</span>'
        swatch = "" if node == ROOT else _swatch(node_hex(colours, node))
        if node == path[-1]:
            parts.append(f'<span class="crumb current" data-current="{node}">{swatch}{text}</span>')
        else:
            parts.append(f'<button class="crumb" data-node="{node}">{swatch}{text}</button>')
    if session.also:  # the first member's path, then the selection it is part of
        n = len(session.members)
        name = selection_label(session.hierarchy, session.members).word
        # The first member is a crumb like its ancestors: a click on it goes back to it alone.
        last = parts[-1].replace('<span class="crumb current" data-current=', '<button class="crumb" data-node=', 1)
        parts[-1] = last[: -len("</span>")] + "</button>"
        parts.append(f'<span class="crumb current selection" data-selection="{n}">'
                     f'selection of {n} segments: {html.escape(name)}</span>')
    title = f'<div class="photo-name">{html.escape(session.name)}</div>'
    return title + '<nav class="crumbs">' + ' <span class="sep">›</span> '.join(parts) + "</nav>"


def shown_nodes(session: Session) -> list[Node]:
    """The segments coloured on the photo inside the selection, as chain heads (the table's rows, the tree's cells
    in the column of the level shown)."""
    return session.chains.shown_at(tree_centre(session), session.level)


def table_html(session: Session) -> str:
    """One row per shown segment: swatch and name, label (with probability, or uncertain), share of the image.

    Rows carry ``data-node`` (a click drills there); the table scrolls sideways on narrow screens.
    """
    hierarchy, colours = session.hierarchy, _canvas(session).colours
    total = hierarchy.area(ROOT)
    rows = []
    members = set(session.members)
    for node in shown_nodes(session):
        current = ' class="current"' if node in members else ""
        rows.append(
            f'<tr data-node="{node}"{current}><td>{_swatch(node_hex(colours, node))}{html.escape(_name(session, node))}</td>'
            f"<td>{html.escape(node_label(hierarchy, node).text)}</td>"
            f"<td>{100.0 * hierarchy.area(node) / total:.1f} %</td></tr>"
        )
    head = "<tr><th>segment</th><th>label</th><th>of image</th></tr>"
    table = f'<table class="segments"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
    return f'<div class="table-scroll">{table}</div><p class="vocabulary">{html.escape(VOCABULARY_NOTE)}</p>'


def level_choices(session: Session) -> list[tuple[str, int]]:
    """Every level as ``(label, level)``, coarse to superpixels, with its whole-image segment count."""
    hierarchy = session.hierarchy
    choices = []
    for level in range(hierarchy.n_levels):
        n = hierarchy.n_nodes(level)
        word = plural(n, "superpixel") if level == hierarchy.leaf_level else plural(n, "segment")
        choices.append((f"level {level} · {word}", level))
    return choices


def granularity_label(session: Session) -> str:
    """The granularity control's label: how many coarse segments its cut gives (app.css names its ends)."""
    return f"Granularity: {plural(session.hierarchy.n_nodes(0), 'coarse segment')}"


def caption_html(session: Session) -> str:
    """One line under the photo saying what is shown and what a click will do."""
    chains, node = session.chains, session.selected
    if session.also:
        names = ", ".join(html.escape(_name(session, member)) for member in session.members)
        stated = selection_label(session.hierarchy, session.members)
        text = (f"A selection of {len(session.members)} segments ({names}), taken as one region: "
                f"<b>{html.escape(stated.word)}</b>. "
                '<span class="pointer-only">Ctrl/Shift-click a segment to add or remove it; Esc or a plain click '
                'goes back to one segment.</span>'
                '<span class="touch-only">With "Add to selection" on, tap a segment to add or remove it; Up goes '
                'back to one segment.</span>')
        return f'<p class="caption">{text}</p>'
    n = len(shown_nodes(session))
    where = "the whole image" if node == ROOT else f"<b>{html.escape(_name(session, node))}</b>"
    # Pointing and keys exist only with a mouse: a touch screen reads the words for tapping (app.css picks one).
    if node != ROOT and chains.is_leaf(node):
        text = (f"{where} is the finest part (a superpixel): nothing smaller to reveal. "
                '<span class="pointer-only">Up (Esc) goes back.</span><span class="touch-only">Up goes back.</span>')
    else:
        word = "superpixel" if session.level == session.hierarchy.leaf_level else "part"
        text = (f"{where}: {plural(n, word)} at level {session.level}. "
                '<span class="pointer-only">Click one to open it; Esc goes up, arrows step.</span>'
                '<span class="touch-only">Tap one to open it; Up goes back.</span>')
    return f'<p class="caption">{text}</p>'


def _jpeg_data_uri(rgb: np.ndarray) -> str:
    # JPEG: a thumbnail is a preview, and a PNG of a tinted photo is five times larger.
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def level_strip_html(session: Session) -> str:
    """Small whole-image views of every level, coarse to superpixels; each a button carrying ``data-level``.

    Rendered once per segmentation (the page marks the current level itself).
    """
    drawn = _canvas(session)
    small = fit_long_side(*drawn.label_maps[0].shape, THUMBNAIL_SIDE)
    small_rgb = resize_nearest(drawn.rgb, *small)
    items = []
    for (label, level), label_map in zip(level_choices(session), drawn.label_maps, strict=True):
        thumb = render_view(small_rgb, resize_nearest(label_map, *small), drawn.colours[level], opacity=THUMBNAIL_OPACITY)
        items.append(
            f'<button class="level-thumb" data-level="{level}" title="{html.escape(label)}">'
            f'<img src="{_jpeg_data_uri(thumb)}" alt="{html.escape(label)}"><span>{html.escape(label)}</span></button>'
        )
    return f'<div class="level-strip">{"".join(items)}</div>'


@dataclass(frozen=True)
class Panels:
    """What the app's panels show for one session after a click."""

    overlay: np.ndarray
    tree: str
    click_targets: str
    evidence: dict[str, Any]
    evidence_title: str
    prediction: dict[str, Any]
    table: str
    breadcrumb: str
    caption: str
    levels: list[tuple[str, int]]
    level: int
    can_go_up: bool


def panels(session: Session) -> Panels:
    """Every panel's value for ``session``."""
    return Panels(
        overlay=overlay(session),
        tree=tree_json(session),
        click_targets=click_targets_json(session),
        evidence=selection_heading_of(session),
        evidence_title=EVIDENCE_TITLE if not session.also else f"Selected: {len(session.members)} segments as one",
        prediction=segment_heading(session, ROOT),
        table=table_html(session),
        breadcrumb=breadcrumb_html(session),
        caption=caption_html(session),
        levels=level_choices(session),
        level=session.level,
        can_go_up=session.selected != ROOT,
    )
