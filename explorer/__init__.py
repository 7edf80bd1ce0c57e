"""The explorer: the web app's own package beside the library (it imports ``hierseg``, never the reverse).

One concept per module, in the order the data flows:

* ``uploads``: a file a person gave the app, read once (its name, its digest, its pixels);
* ``pool``: the loaded checkpoints, shared by every session, and the heavy call (segment);
* ``chains``: the tree with single-child chains collapsed, the tree a person explores;
* ``session``: what is selected, at which level and granularity, shown how (immutable state, no views);
* ``granularity``: the granularity slider's log-height scale over a tree's merge heights;
* ``display``: derived from a session's tree and photo: every node's colour, the photo and label
  maps at display size (computed once per tree, cached outside the session);
* ``classes``: how a node's classes are stated (top k, honest "uncertain" labels);
* ``views``: the photo, the tree figure, breadcrumb, table, level strip and caption of a session;
* ``hover``: the label maps the page outlines hovered segments from;
* ``describe``: the API's JSON answers;
* ``downloads``: the files a person takes away, named after the photo and the node;
* ``events``: the app's event handlers (gradio), returning ``{component: value}``;
* ``static/``: the page's JavaScript and CSS.
"""
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"

__all__ = ["STATIC"]
