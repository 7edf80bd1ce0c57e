"""Where each stage of a photo runs when the segmenter has a device (benchmarks/gpu.py measures it on one).

At batch 1 the merge rounds (Ward) and the pooling of class evidence over nodes are many small steps:
on a GPU each would be a kernel launch and a copy back. They run on the host, in numpy; the device gets
the dense passes (the model, the merge tree's features, the labeller's convolutions) and the readout
copies a fixed handful of arrays back per photo, never one per node. On the CPU this is checked by
what those stages receive (numpy arrays, not tensors) and by counting the readout's torch calls and
device-to-host copies under a ``TorchFunctionMode``: the same few for a photo of a few dozen nodes as
for one of hundreds.
"""
from __future__ import annotations

from dataclasses import is_dataclass, replace
from typing import Any

import numpy as np
import pytest
import torch
from skimage import data
from torch.overrides import TorchFunctionMode

import hierseg.readout.merge_tree as merge_tree_readout
from hierseg import load_segmenter
from hierseg.segmenter import Segmenter
from hierseg.labeller import PhotoEvidence

COPIES = {"cpu", "numpy", "item", "tolist", "to", "__float__", "__int__", "__index__", "__array__"}


class TorchCalls(TorchFunctionMode):
    """Every torch function and tensor method called while active; ``copies`` those that bring data
    to the host (or move it at all)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.calls.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))

    @property
    def copies(self) -> list[str]:
        return [c for c in self.calls if c in COPIES]


@pytest.fixture(scope="module")
def segmenter(shipped_checkpoint: str) -> Segmenter:
    segmenter = load_segmenter(shipped_checkpoint, device="cpu")
    assert segmenter.config.tree is not None and segmenter.labeller is not None, "the default reads a merge tree and names it"
    return segmenter


def readout(segmenter, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> tuple[TorchCalls, dict[str, list], Any]:
    """The readout of one photo under a ``TorchCalls`` mode; what the host stages and the labeller were given."""
    given: dict[str, list] = {"ward_tree": [], "merge_logits": [], "stem_map": []}
    labeller_kind = type(segmenter.labeller)  # the concrete kind's forward: the base class's is abstract
    ward_tree, merge_logits, labeller_forward = merge_tree_readout.ward_tree, PhotoEvidence.merge_logits, labeller_kind.forward

    def spy_ward_tree(*args: Any, **kwargs: Any) -> Any:
        # A record of host arrays (the border table) counts as its arrays.
        given["ward_tree"] += [type(v) for a in args for v in (vars(a).values() if is_dataclass(a) else [a])]
        return ward_tree(*args, **kwargs)

    def spy_merge_logits(self: PhotoEvidence, *args: Any) -> Any:
        given["merge_logits"] += [type(a) for a in args] + [type(f.logits) for f, _ in self.fields]
        return merge_logits(self, *args)

    def spy_forward(self: Any, *args: Any, stem_map: torch.Tensor | None = None, **kwargs: Any) -> Any:
        given["stem_map"].append(stem_map.device)
        return labeller_forward(self, *args, stem_map=stem_map, **kwargs)

    monkeypatch.setattr(merge_tree_readout, "ward_tree", spy_ward_tree)
    monkeypatch.setattr(PhotoEvidence, "merge_logits", spy_merge_logits)
    monkeypatch.setattr(labeller_kind, "forward", spy_forward)
    prepared = segmenter.prepare(photo)
    output = segmenter.forward([prepared])
    with TorchCalls() as mode:
        h = segmenter.readout(prepared, output, 0)
    monkeypatch.undo()
    return mode, given, h


@pytest.mark.slow
def test_merge_rounds_and_pooling_run_on_the_host_with_a_fixed_number_of_copies(segmenter, monkeypatch) -> None:
    # The same photo over the checkpoint's superpixels and over a quarter as many: far fewer nodes.
    config = segmenter.config
    coarse = Segmenter(segmenter.model, replace(config, superpixels=replace(config.superpixels,
                       n_segments=config.superpixels.n_segments // 4)), segmenter.device, labeller=segmenter.labeller)
    runs = [readout(s, data.astronaut(), monkeypatch) for s in (segmenter, coarse)]
    nodes = [h.merge_tree.n_nodes for _, _, h in runs]
    assert nodes[0] > 1.5 * nodes[1], nodes  # the photos differ enough for per-node work to show

    for mode, given, h in runs:
        assert given["ward_tree"] and set(given["ward_tree"]) <= {np.ndarray, float, int}, given["ward_tree"]
        assert given["merge_logits"] and set(given["merge_logits"]) == {np.ndarray}, given["merge_logits"]
        assert given["stem_map"] == [segmenter.device]  # the labeller's convolution reads the device's map
    # Per photo, not per node: the same torch calls (the labeller's dense passes are most of them) and the
    # same few copies to the host for half the nodes.
    (fine, *_), (coarse_mode, *_) = runs
    assert fine.copies == coarse_mode.copies and len(fine.copies) <= 12, (fine.copies, coarse_mode.copies)
    assert fine.calls == coarse_mode.calls
