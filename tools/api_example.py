"""The README's API example, run against the app: it checks (or rewrites) the output the README states.

README.md holds the example between ``<!-- api-example:start -->`` and ``<!-- api-example:end -->``: a
```python block whose ``print`` lines end in ``# -> <what it prints>``. Running the block against the app
(a ``gradio_client.Client`` on its URL, from the repository root) prints those lines; the README is
right when every printed line is the one it states, in order (``tests/test_app_api.py`` checks it).

    python tools/api_example.py            # launch the app on the default checkpoint, say what differs
    python tools/api_example.py --write    # ... and write the printed lines into README.md
"""
from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
START, END = "<!-- api-example:start -->", "<!-- api-example:end -->"
ARROW = "# -> "
FENCE = re.compile(r"```python\n(.*?)```", re.S)


def example_block(readme: str) -> str:
    """The text between the markers.

    Raises:
        ValueError: the markers or the python block between them are missing.
    """
    if START not in readme or END not in readme:
        raise ValueError(f"README.md has no {START} ... {END} block")
    block = readme.split(START, 1)[1].split(END, 1)[0]
    if not FENCE.search(block):
        raise ValueError("the API example block holds no ```python code")
    return block


def run(block: str, url: str) -> list[str]:
    """The lines the block's code prints, run against the app at ``url`` (the Client's address replaced)."""
    code = FENCE.search(block).group(1)
    code = re.sub(r'Client\("[^"]*"\)', f'Client("{url}", verbose=False)', code, count=1)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.chdir(REPO):
        exec(compile(code, "README.md API example", "exec"), {"__name__": "api_example"})  # noqa: S102
    return printed.getvalue().splitlines()


def stated(block: str) -> list[str]:
    """The output the block states, one ``# -> `` comment per print line, in order."""
    return [line.split(ARROW, 1)[1] for line in FENCE.search(block).group(1).splitlines() if ARROW in line]


def rewritten(block: str, printed: list[str]) -> str:
    """``block`` with its ``# -> `` comments replaced by ``printed``, in order.

    Raises:
        ValueError: the code printed more or fewer lines than it has ``# -> `` comments.
    """
    lines = block.splitlines(keepends=True)
    arrows = [i for i, line in enumerate(lines) if ARROW in line]
    if len(arrows) != len(printed):
        raise ValueError(f"the example printed {len(printed)} lines for {len(arrows)} '# -> ' comments")
    for i, text in zip(arrows, printed, strict=True):
        lines[i] = lines[i].split(ARROW, 1)[0] + ARROW + text + "\n"
    return "".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="write what the app printed into README.md")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    import app

    demo = app.build_demo()
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, **app.LAUNCH_KWARGS)
    try:
        readme = README.read_text(encoding="utf-8")
        block = example_block(readme)
        new = rewritten(block, run(block, url))
    finally:
        demo.close()
    if new == block:
        print("README.md's API example states what the app answers.")
        return 0
    if args.write:
        README.write_text(readme.replace(block, new), encoding="utf-8")
        print("README.md's API example rewritten.")
        return 0
    for before, after in zip(stated(block), stated(new), strict=True):
        if before != after:
            print(f"README: {before}\napp:    {after}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
