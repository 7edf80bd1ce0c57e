"""README.md is a user's document that stays true: short, a Space's front matter, the commands CI runs, links that resolve."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest's own dependency reads TOML
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
MAX_LINES = 300
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def fenced_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def readme_command(needle: str) -> list[list[str]]:
    """The README's one-line fresh-machine command that contains ``needle``, as its ``&&``-separated commands."""
    lines = [line for block in fenced_blocks(README.read_text(), "bash") for line in block.splitlines()
             if needle in line and "&&" in line]
    assert len(lines) == 1, f"expected one fresh-machine command with {needle!r} in README.md, found {lines}"
    return [shlex.split(part) for part in lines[0].split("&&")]


def heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors for a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", path.read_text(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_readme_is_short() -> None:
    n = len(README.read_text().splitlines())
    assert n <= MAX_LINES, f"README.md has {n} lines (at most {MAX_LINES}): move detail to docs/ and link it"


def test_readme_opens_with_the_space_front_matter_for_the_pinned_gradio() -> None:
    text = README.read_text()
    assert text.startswith("---\n"), "README.md must start with the Space's YAML front matter"
    front = dict(line.split(": ", 1) for line in text.split("\n---\n", 1)[0].splitlines()[1:])
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py" and (REPO / front["app_file"]).is_file()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    pins = [d for d in pyproject["project"]["optional-dependencies"]["app"] if d.startswith("gradio==")]
    assert pins == [f"gradio=={front['sdk_version']}"], "the Space's sdk_version must be the gradio the app extra pins"


def test_ci_runs_the_readme_test_command() -> None:
    """``.ci/run`` installs the extras the README's test command installs and runs its pytest command."""
    commands = readme_command("pytest")
    install = next(c for c in commands if c[:2] == ["pip", "install"])
    pytest_command = next(c for c in commands if "pytest" in c)
    ci = [shlex.split(line) for line in (REPO / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    ci_install = [c for c in ci if c[:4] == ["python", "-m", "pip", "install"] and "-e" in c]
    assert [c[c.index("-e") + 1] for c in ci_install] == [install[install.index("-e") + 1]]
    assert ci[-1] == pytest_command, f".ci/run ends with {ci[-1]}, the README's test command is {pytest_command}"


def test_readme_app_command_installs_what_the_app_needs() -> None:
    commands = readme_command("app.py")
    install = next(c for c in commands if c[:2] == ["pip", "install"])
    extras = set(re.fullmatch(r"\.\[(.*)\]", install[install.index("-e") + 1]).group(1).split(","))
    assert {"seeds", "app"} <= extras and commands[-1] == ["python", "app.py"]


def test_readme_names_the_fast_subset_and_its_marker_exists() -> None:
    assert 'python -m pytest -q -m "not slow"' in README.read_text()
    markers = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert any(m.startswith("slow:") for m in markers)


def test_readme_names_only_extras_that_exist() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    named = re.findall(r"^\| `(\w+)` \|", README.read_text(), flags=re.M)
    assert named and set(named) <= set(extras), f"README names extras {named}, pyproject has {sorted(extras)}"


def test_the_api_example_sits_between_its_markers() -> None:
    text = README.read_text()
    assert text.count("<!-- api-example:start -->") == 1 and text.count("<!-- api-example:end -->") == 1
    block = text.split("<!-- api-example:start -->", 1)[1].split("<!-- api-example:end -->", 1)[0]
    (code,) = fenced_blocks(block.strip() + "\n", "python")
    assert "Client(" in code and all(f'api_name="/{name}"' in code for name in ("segment", "drill", "granularity", "export"))


def test_every_relative_link_in_the_docs_resolves() -> None:
    """README, docs/ and the model card link files and headings that exist (moving text must not break a link)."""
    broken = []
    for doc in [README, REPO / "checkpoints" / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target in LINK.findall(doc.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked offline
            path, _, anchor = target.partition("#")
            resolved = (doc.parent / path) if path else doc
            if not resolved.exists():
                broken.append(f"{doc.relative_to(REPO)}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in heading_anchors(resolved):
                broken.append(f"{doc.relative_to(REPO)}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)
