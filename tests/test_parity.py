"""Exactness against the official CAST code: outputs of the official classes on a fixed checkpoint."""
import numpy as np
import pytest
import torch

from conftest import shared_data
from hierseg.checkpoints import convert_file, load_checkpoint
from hierseg.hierarchy.build import compose, level_assignments

CASES = ["moco_sp196_astronaut", "moco_sp64_chelsea"]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    fixture = shared_data("cast_parity")
    folder, report = convert_file(fixture / "moco_checkpoint_0099.pth.tar", tmp_path_factory.mktemp("ckpt") / "parity",
                                  clusters=(16, 8, 4, 2))
    # Keep the projector and predictor for this check: convert_file drops them only for shipping.
    from hierseg.convert import convert_official

    model, _ = convert_official(fixture / "moco_checkpoint_0099.pth.tar", clusters=(16, 8, 4, 2))
    return fixture, folder, report, model.eval()


def test_report_accounts_for_every_official_tensor(converted):
    import json

    from hierseg.convert import convert_official

    fixture = converted[0]
    _, report = convert_official(fixture / "moco_checkpoint_0099.pth.tar", clusters=(16, 8, 4, 2))
    # The report names encoder tensors without the "module.base_encoder." prefix the file adds.
    keys = set()
    for k, *_ in json.loads((fixture / "keys.json").read_text())["moco_state_dict"]:
        for prefix in ("module.base_encoder.", "module."):
            if k.startswith(prefix) and not k.startswith("module.momentum_encoder."):
                k = k[len(prefix):]
                break
        keys.add(k)
    assert set(report.mapped) | set(report.dropped) == keys
    assert not set(report.mapped) & set(report.dropped)
    assert all(k.startswith("module.momentum_encoder.") or k.startswith("blocks.") for k in report.dropped)
    assert report.mapped["predictor.0.weight"] == "predictor.0.weight"
    assert report.mapped["blocks2.2.attn.qkv.weight"] == "stages.1.0.attn.qkv.weight"


@pytest.mark.parametrize("case", CASES)
def test_model_matches_official_outputs(converted, case):
    fixture, _, _, model = converted
    ref = np.load(fixture / f"{case}.npz")
    with torch.no_grad():
        out = model(torch.from_numpy(ref["image"]), torch.from_numpy(ref["superpixels"]).long())
    assert np.array_equal(out.padding_mask.numpy(), ref["padding_mask1"])
    np.testing.assert_allclose(out.stage_inputs.numpy(), ref["stage1_in"], atol=1e-5)
    for level in range(4):
        np.testing.assert_allclose(out.assignment_logits[level].numpy(), ref[f"logit{level + 1}"], atol=1e-3)
        assert np.array_equal(out.centroids[level].numpy(), ref[f"sampled_inds{level + 1}"])
    np.testing.assert_allclose(out.features.numpy(), ref["out4"], atol=1e-4)
    np.testing.assert_allclose(out.projection.numpy(), ref["proj"], atol=1e-4)
    np.testing.assert_allclose(out.predicted_projection.numpy(), ref["pred"], atol=1e-4)

    superpixels = ref["superpixels"][0]
    assignments = level_assignments([a[0].numpy() for a in out.assignment_logits], int(superpixels.max()) + 1)
    for level, clusters in enumerate(compose(assignments)):
        assert np.array_equal(clusters[superpixels], ref[f"seg_level{level + 1}"][0])


@pytest.mark.parametrize("case", CASES)
def test_converted_checkpoint_folder_gives_the_same_hierarchy(converted, case):
    fixture, folder, _, _ = converted
    model, config = load_checkpoint(folder)
    assert config.model.proj_dim == 0 and config.superpixels.method == "seeds"
    ref = np.load(fixture / f"{case}.npz")
    with torch.no_grad():
        out = model(torch.from_numpy(ref["image"]), torch.from_numpy(ref["superpixels"]).long())
    np.testing.assert_allclose(out.features.numpy(), ref["out4"], atol=1e-4)
    for level in range(4):
        assert np.array_equal(out.centroids[level].numpy(), ref[f"sampled_inds{level + 1}"])
