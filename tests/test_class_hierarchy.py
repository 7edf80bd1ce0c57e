"""The WordNet ancestry of the ImageNet classes and the 'as specific as the evidence supports' rule."""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from hierseg.class_hierarchy import DATA_FILE, FAMILIES_FILE, ClassHierarchy, imagenet_hierarchy
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
    # A family that is not listed never names: 85% over twelve carnivores of different families reads nothing,
    # although 'carnivore' and 'placental' hold all of it.
    beasts = ["lion", "brown bear", "red fox", "meerkat", "otter", "tabby", "timber wolf", "giant panda",
              "mongoose", "skunk", "badger", "weasel"]
    r = np.full(1000, 0.15 / 988)
    r[[names.index(b) for b in beasts]] = 0.85 / 12
    assert h.mass(r)[h.names.index("carnivore")] > 0.85 and h.name(r, 0.5).synset == -1
    # The most specific listed family wins: beetles inside 'insect'.
    s = np.full(1000, 0.1 / 992)
    s[[names.index(b) for b in ["ladybug", "weevil", "dung beetle", "tiger beetle", "leaf beetle", "ground beetle",
                                "long-horned beetle", "rhinoceros beetle"]]] = 0.9 / 8
    assert h.families[h.name(s, 0.5).synset] == "beetle"


def test_the_family_list_is_data_with_a_reason_for_each_entry():
    """Every listed family is a WordNet synset over ImageNet classes, named once, with its reason; none of the
    upper categories the issue found naming things is listed."""
    data = json.loads(FAMILIES_FILE.read_text())
    h = imagenet_hierarchy()
    assert len(h.families) == len(data["families"]) >= 60
    words = [entry["name"] for entry in data["families"]]
    assert len(set(words)) == len(words)
    for entry in data["families"]:
        synset = h.wnids.index(entry["wnid"])
        assert synset >= h.num_classes and h.size[synset] >= 2, entry
        assert len(entry["reason"]) > 15, entry
    listed = {entry["wnid"] for entry in data["families"]}
    assert not listed & set(data["never"])
    for name in ("implement", "device", "structure", "placental", "organism", "artifact", "covering", "container",
                 "equipment", "ungulate", "bovid"):
        assert h.wnids[h.names.index(name)] in data["never"], name
    with pytest.raises(ValueError, match="not a family"):
        bad = dict(data, families=[{"wnid": h.wnids[0], "name": "tench", "reason": "a class is not a family"}])
        path = Path(tempfile.mkdtemp()) / "families.json"
        path.write_text(json.dumps(bad))
        ClassHierarchy.from_json(DATA_FILE, path)


@pytest.mark.skipif(not (WORDNET / "data.noun").exists(), reason="WordNet 3.0 (wordnet-base) is not installed")
def test_the_script_rebuilds_the_shipped_file(tmp_path):
    subprocess.run([sys.executable, str(REPO / "tools" / "imagenet_wordnet.py"), "--out", str(tmp_path)], check=True,
                   cwd=REPO, capture_output=True)
    assert json.loads((tmp_path / "imagenet_hierarchy.json").read_text()) == json.loads(DATA_FILE.read_text())
    notice = (tmp_path / "imagenet_hierarchy.LICENSE").read_text()
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in notice
    assert notice == (DATA_FILE.parent / "imagenet_hierarchy.LICENSE").read_text()
