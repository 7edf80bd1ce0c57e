"""Readouts and labellers are plug-ins, the parts own their hooks, EfficientNet-Lite0 has one home (issue 22).

A throwaway labeller and a throwaway readout, each one class plus one registry entry (monkeypatched),
must be picked by the checkpoint config and run through ``Segmenter`` without any other change.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import pytest
import torch
from skimage import data

from hierseg.checkpoints import CheckpointConfig
from hierseg.hierarchy.merge_tree import TreeConfig
from hierseg.labeller import LABELLERS, Labeller, LabellerConfig, LogitField, PhotoEvidence
from hierseg.model import CAST, build_cast
from hierseg.preprocess import InputConfig
from hierseg.readout import READOUTS, LevelsReadout, MergeTreeReadout, Readout, registry
from hierseg.segmenter import Segmenter
from hierseg.superpixels import SuperpixelConfig

REPO = Path(__file__).resolve().parent.parent
SP = SuperpixelConfig("seeds", 48, histogram_bins=5, iterations=4, prior=2, num_levels=1, double_step=False)
INPUT = InputConfig(size=96, resize="long_side", connected_superpixels=True)
TREE = TreeConfig(thresholds=(0.3, 0.1), size_power=0.5, small_area=0.02)


@dataclass(frozen=True)
class ConstantConfig(LabellerConfig):
    """A throwaway kind: the same made-up logits for every pixel; reads the cls token when asked to."""

    kind: ClassVar[str] = "constant"
    reads_cls: ClassVar[bool] = True
    node_temperature: float = 1.0
    image_temperature: float = 1.0

    def class_names(self, checkpoint_names: Sequence[str]) -> list[str]:
        return ["left", "right", "neither"]

    def build(self, model: torch.nn.Module, folder: Path | None) -> Labeller:
        return ConstantLabeller(self)


class ConstantLabeller(Labeller):
    def forward(self, photo, view, superpixels=None, token_logits=None, stem_map=None, cls_logits=None) -> PhotoEvidence:
        field = LogitField(np.zeros(view.shape[:2], np.int64), np.array([[2.0, 1.0, 0.0]], np.float32))
        return PhotoEvidence([(field, 1.0)], np.array([0.0, 1.0, 2.0], np.float32), self.config)


class FirstPoolingReadout(Readout):
    """A throwaway readout: the superpixels and the first pooling's clusters only, from two stages."""

    stages = 2

    @classmethod
    def from_checkpoint(cls, config: CheckpointConfig) -> Readout | None:
        return cls() if config.provenance.get("readout") == "first-pooling" else None

    def group(self, model, prepared, output, index):
        return LevelsReadout().group(model, prepared, output, index)


@pytest.fixture(scope="module")
def model() -> CAST:
    torch.manual_seed(0)
    return build_cast("cast_hybrid_micro", num_classes=4, head_width=0, grouping_dim=8, merge_tokens=3.0).eval()


def _config(model: CAST, **changes) -> CheckpointConfig:
    return CheckpointConfig(model=model.config, superpixels=SP, class_names=list("abcd"), input=INPUT, **changes)


def _stages_run(segmenter: Segmenter) -> int:
    return len(segmenter.forward([segmenter.prepare(data.coffee())]).stage_tokens)


def test_a_new_labeller_is_a_config_class_and_a_registry_entry(model: CAST, monkeypatch):
    monkeypatch.setitem(LABELLERS, ConstantConfig.kind, ConstantConfig)
    segmenter = Segmenter(model, _config(model, tree=TREE, labeller={"kind": "constant", "node_temperature": 0.5}))
    assert isinstance(segmenter.labeller, ConstantLabeller) and segmenter.labeller.config.node_temperature == 0.5
    h = segmenter(data.coffee())
    assert h.class_names == ["left", "right", "neither"] and h.meta["labeller"]["kind"] == "constant"
    expected = np.exp([4.0, 2.0, 0.0]) / np.exp([4.0, 2.0, 0.0]).sum()  # its logits at its temperature
    np.testing.assert_allclose(h.evidence[0][0], expected, atol=1e-3)  # float16 node evidence
    # It reads the cls token: the merge tree alone would stop the pass after stage 0.
    assert _stages_run(segmenter) == len(model.stages)
    assert _stages_run(Segmenter(model, _config(model, tree=TREE), labeller=None)) == 1


def test_an_unknown_labeller_kind_is_refused(model: CAST):
    with pytest.raises(ValueError, match="labeller kind must be one of 'teacher-head', 'tokens', 'pypi-lite0', not 'nope'"):
        Segmenter(model, _config(model, labeller={"kind": "nope"}))


def test_a_new_readout_is_a_class_and_a_registry_entry(model: CAST, monkeypatch):
    assert READOUTS == (MergeTreeReadout, LevelsReadout)
    monkeypatch.setattr(registry, "READOUTS", (FirstPoolingReadout, *READOUTS))
    segmenter = Segmenter(model, _config(model, provenance={"readout": "first-pooling"}), labeller=None)
    assert isinstance(segmenter.tree_readout, FirstPoolingReadout) and _stages_run(segmenter) == 2
    h = segmenter(data.coffee())
    assert h.n_levels == 2 and h.n_nodes(0) <= model.config.clusters[0]
    # Configs it does not claim go on down the list.
    assert isinstance(Segmenter(model, _config(model), labeller=None).tree_readout, LevelsReadout)
    assert isinstance(Segmenter(model, _config(model, tree=TREE), labeller=None).tree_readout, MergeTreeReadout)


def test_fixed_levels_have_no_merge_tree(model: CAST):
    segmenter = Segmenter(model, _config(model), labeller=None)
    prepared = segmenter.prepare(data.coffee())
    with pytest.raises(ValueError, match="fixed levels"):
        segmenter.merge_tree(prepared, segmenter.forward([prepared]), 0)


def test_only_a_pooling_that_gives_a_tree_reads_one():
    official = build_cast("cast_micro", img_size=64, clusters=(8, 4, 2, 1))
    assert not official.config.pooling.gives_tree
    with pytest.raises(Exception, match="merge tree needs region merging"):
        CheckpointConfig(model=official.config, superpixels=SP, tree=TREE)
    pixels = torch.zeros(1, 3, 64, 64)
    superpixels = torch.arange(64).repeat_interleave(64).reshape(1, 64, 64) // 8
    output = official(pixels, superpixels)
    with pytest.raises(ValueError, match="regions"):
        official.tree_features(output)
    output.regions = torch.nn.Module()  # any regions: the pooling itself refuses
    with pytest.raises(ValueError, match="pooling that gives one"):
        official.tree_features(output)


def test_the_classifier_is_named_and_its_keys_are_unchanged():
    wide = build_cast("cast_hybrid_micro", num_classes=7)  # head_width 1280
    assert wide.head.feature.out_features == 1280 and wide.head.classifier.out_features == 7
    assert {k for k in wide.state_dict() if k.startswith("head.")} == {"head.0.weight", "head.0.bias",
                                                                      "head.1.weight", "head.1.bias"}
    linear = build_cast("cast_micro", num_classes=5)
    assert linear.head.feature is None and linear.head.classifier is linear.head
    assert {k for k in linear.state_dict() if k.startswith("head.")} == {"head.weight", "head.bias"}


def test_stems_declare_what_weight_decay_leaves_alone():
    learned = build_cast("cast_micro", pos_embed="learned")
    assert learned.no_weight_decay() == {"cls_token", "stem.pos_embed", "stem.cls_pos_embed"}
    assert {"stem.pos_embed", "stem.cls_pos_embed"} <= dict(learned.named_parameters()).keys()
    assert build_cast("cast_hybrid_micro").no_weight_decay() == {"cls_token"}


def _sources(*folders: str) -> dict[str, str]:
    return {str(p.relative_to(REPO)): p.read_text() for folder in folders for p in (REPO / folder).rglob("*.py")}


def test_lite0_is_created_in_one_place():
    created = [path for path, text in _sources("hierseg", "training", "explorer", "benchmarks", "tests").items()
               if re.search(r"create_model\(\s*[\"']tf_efficientnet_lite0", text)]
    assert created == ["hierseg/model/lite0.py"]


def test_cast_and_the_segmenter_name_no_concrete_part():
    cast = ast.parse((REPO / "hierseg" / "model" / "cast.py").read_text())
    imported = [node.module for node in ast.walk(cast) if isinstance(node, ast.ImportFrom)]
    assert not [m for m in imported if m and m.split(".")[0] in ("hybrid", "official")], imported
    texts = _sources("hierseg")
    checked = ["hierseg/model/cast.py", "hierseg/segmenter.py", *(p for p in texts if p.startswith("hierseg/checkpoints/"))]
    assert len(checked) > 2
    for path in checked:
        assert not re.search(r"isinstance\([^)]*(RegionMerging|LiteStem|ConvStem|GraphPool)", texts[path]), path
    segmenter = texts["hierseg/segmenter.py"]
    assert not re.search(r"\.kind\s*[!=]=|config\.tree\b", segmenter)
    assert not [path for path, text in _sources("hierseg", "training").items() if re.search(r"\bhead\[", text)]


def test_a_labeller_setting_may_name_another_kind():
    from hierseg.labeller import PypiLite0Config, TeacherHeadConfig
    from training.evaluation.labels import parse_setting, setting_name

    shipped = TeacherHeadConfig()
    assert parse_setting("token_weight=0.25", shipped) == TeacherHeadConfig(token_weight=0.25)
    other = parse_setting("kind=pypi-lite0", shipped)
    assert other == PypiLite0Config() and setting_name(other, shipped) == "kind=pypi-lite0, view_size=320"
