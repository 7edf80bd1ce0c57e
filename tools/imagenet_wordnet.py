"""Build ``hierseg/data/imagenet_hierarchy.json``: the WordNet ancestry of the 1000 ImageNet-1k classes.

    python tools/imagenet_wordnet.py [--wordnet /usr/share/wordnet] [--out hierseg/data]

Reads the WordNet 3.0 noun database (Debian's ``wordnet-base`` installs it under ``/usr/share/wordnet``)
and timm's list of the 1000 ImageNet-1k WordNet ids, whose sorted order is torchvision's class order
(``hierseg.class_names``). For every class it follows the first hypernym pointer (``@``, or ``@i`` for an
instance) up to 'entity', so the ancestry is a tree: a synset's probability mass is the sum over the
classes whose chain passes through it, counted once. Writes the JSON and, beside it, WordNet's licence
notice, copied from the header of the database it read.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_WORDNET = Path("/usr/share/wordnet")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "hierseg" / "data"
ROOT = "n00001740"  # entity


def read_nouns(wordnet: Path) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(first lemma of each synset, its first hypernym, the licence header lines) from ``data.noun``."""
    names: dict[str, str] = {}
    parents: dict[str, str] = {}
    header: list[str] = []
    with open(wordnet / "data.noun", encoding="utf-8") as f:
        for line in f:
            if line.startswith("  "):  # the licence header: "  <line number> <text>"
                header.append(line.strip().split(" ", 1)[1].rstrip() if " " in line.strip() else "")
                continue
            fields = line.split(" | ", 1)[0].split()
            offset, word_count = fields[0], int(fields[3], 16)
            wnid = f"n{offset}"
            names[wnid] = fields[4].replace("_", " ")
            pointers_at = 4 + 2 * word_count
            for i in range(int(fields[pointers_at])):
                symbol, target, pos = fields[pointers_at + 1 + 4 * i: pointers_at + 4 + 4 * i]
                if symbol in ("@", "@i") and pos == "n":
                    parents[wnid] = f"n{target}"
                    break
    return names, parents, header


def imagenet_wnids() -> list[str]:
    """The 1000 ImageNet-1k WordNet ids in class-index order (timm ships them sorted, which is that order)."""
    import timm.data

    path = Path(timm.data.__file__).parent / "_info" / "imagenet_synsets.txt"
    wnids = path.read_text().split()
    if len(wnids) != 1000 or wnids != sorted(wnids):
        raise RuntimeError(f"{path} should list 1000 sorted ids")
    return wnids


def chain(wnid: str, parents: dict[str, str]) -> list[str]:
    out = [wnid]
    while out[-1] != ROOT:
        if out[-1] not in parents:
            raise RuntimeError(f"{out[-1]} has no hypernym and is not 'entity'")
        out.append(parents[out[-1]])
    return out


def build(wordnet: Path) -> tuple[dict, list[str]]:
    from hierseg.class_names import imagenet_class_names

    names, parents, header = read_nouns(wordnet)
    class_names = imagenet_class_names()
    classes = []
    synsets: dict[str, str] = {}
    for index, wnid in enumerate(imagenet_wnids()):
        ancestry = chain(wnid, parents)
        classes.append({"wnid": wnid, "name": class_names[index], "chain": ancestry[1:]})
        synsets.update({s: names[s] for s in ancestry[1:]})
    data = {
        "about": "WordNet 3.0 ancestry of the ImageNet-1k classes in class-index order: each class's wnid, "
                 "its name in hierseg.class_names, and its chain of first hypernyms from its parent up to "
                 "'entity'. 'synsets' names every ancestor by its first WordNet lemma. Made by "
                 "tools/imagenet_wordnet.py; licence: imagenet_hierarchy.LICENSE.",
        "source": "WordNet 3.0, Princeton University (Debian package wordnet-base)",
        "classes": classes,
        "synsets": dict(sorted(synsets.items())),
    }
    return data, header


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wordnet", type=Path, default=DEFAULT_WORDNET, help="folder holding data.noun")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    data, header = build(args.wordnet)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "imagenet_hierarchy.json", "w", encoding="utf-8") as f:
        f.write("{\n")
        for key in ("about", "source"):
            f.write(f"{json.dumps(key)}: {json.dumps(data[key])},\n")
        f.write('"classes": [\n')
        f.write(",\n".join(json.dumps(c) for c in data["classes"]))
        f.write('\n],\n"synsets": ')
        f.write(json.dumps(data["synsets"], indent=0))
        f.write("\n}\n")
    notice = [
        "The file imagenet_hierarchy.json beside this notice is derived from WordNet 3.0 (synset ids,",
        "first lemmas and hypernym links of the noun database), under WordNet's licence:",
        "",
        *header,
        "",
    ]
    (args.out / "imagenet_hierarchy.LICENSE").write_text("\n".join(notice), encoding="utf-8")
    print(f"{len(data['classes'])} classes, {len(data['synsets'])} ancestor synsets -> {args.out}")


if __name__ == "__main__":
    main()
