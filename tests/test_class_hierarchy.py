"""The WordNet ancestry of the ImageNet classes and the 'as specific as the evidence supports' rule."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from hierseg.class_hierarchy import DATA_FILE, imagenet_hierarchy
from hierseg.class_names import imagenet_class_names

WORDNET = Path("/usr/share/wordnet")


def under(hierarchy, synset_name: str) -> list[int]:
    synset = hierarchy.names.index(synset_name)
    return [c for c in range(hierarchy.num_classes) if hierarchy.is_under(synset, c)]


def test_data_file_lists_the_classes_in_torchvision_order_with_chains_to_entity():
    h = imagenet_hierarchy()
    assert h.num_classes == 1000 and list(h.names[:1000]) == imagenet_class_names()
    assert list(h.wnids[:1000]) == sorted(h.wnids[:1000])  # the wnids' sorted order is the class order
    assert h.wnids[imagenet_class_names().index("sorrel")] == "n02389026"
    roots = np.flatnonzero(h.parent < 0)
    assert [h.names[r] for r in roots] == ["entity"]
    assert [h.names[s] for s in h.ancestors(imagenet_class_names().index("sorrel"))[:3]] == ["sorrel", "horse", "equine"]
    # The classes are leaves: none is the parent of another synset.
    assert not np.isin(np.arange(1000), h.parent).any()


def test_mass_sums_class_probabilities_up_the_tree():
    h = imagenet_hierarchy()
    p = np.random.default_rng(0).dirichlet(np.full(1000, 0.1))
    mass = h.mass(p)
    dogs = under(h, "dog")
    assert len(dogs) == 118
    assert mass[h.names.index("dog")] == pytest.approx(p[dogs].sum())
    assert mass[h.names.index("entity")] == pytest.approx(1.0)
    np.testing.assert_allclose(h.mass(np.stack([p, p]))[1], mass)


def test_name_is_the_deepest_synset_the_evidence_supports():
    h = imagenet_hierarchy()
    names = imagenet_class_names()
    # Twelve breeds from different branches of 'dog' sharing 85%: no breed, no branch, but 'dog'.
    breeds = ["Chihuahua", "beagle", "whippet", "Border terrier", "golden retriever", "Siberian husky",
              "boxer", "Great Dane", "pug", "Samoyed", "toy poodle", "collie"]
    p = np.full(1000, 0.15 / 988)
    p[[names.index(b) for b in breeds]] = 0.85 / 12
    name = h.name(p, 0.5)
    assert h.names[name.synset] == "dog" and name.probability == pytest.approx(0.85 + 0.15 / 988 * 106)
    # A leaf that clears the threshold is named itself.
    q = np.full(1000, 0.3 / 999)
    q[names.index("tabby")] = 0.7
    assert h.names[h.name(q, 0.5).synset] == "tabby"
    # Nothing below a too-broad synset clears it: no name, and the top class's probability.
    flat = np.full(1000, 1 / 1000)
    assert h.name(flat, 0.5) == (-1, pytest.approx(1 / 1000))
    # Synsets over a quarter of the vocabulary say too little to be a segment's name.
    assert not h.nameable[h.names.index("artifact")] and not h.nameable[h.names.index("animal")]
    assert h.nameable[h.names.index("dog")] and h.nameable[h.names.index("placental")]


@pytest.mark.skipif(not (WORDNET / "data.noun").exists(), reason="WordNet 3.0 (wordnet-base) is not installed")
def test_the_script_rebuilds_the_shipped_file(tmp_path):
    subprocess.run([sys.executable, str(REPO / "tools" / "imagenet_wordnet.py"), "--out", str(tmp_path)], check=True,
                   cwd=REPO, capture_output=True)
    assert json.loads((tmp_path / "imagenet_hierarchy.json").read_text()) == json.loads(DATA_FILE.read_text())
    notice = (tmp_path / "imagenet_hierarchy.LICENSE").read_text()
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in notice
    assert notice == (DATA_FILE.parent / "imagenet_hierarchy.LICENSE").read_text()
