"""The README's shell blocks run as written, in order, against one scratch directory.

A ```sh block runs with ``bash -euo pipefail``: every command in it must succeed. A
```console block is commands (``$ ...``) each followed by the output the README quotes; the
output must match line by line (``...`` stands for anything) and the command must exit 0, or
the code its trailing ``# exit N`` says. A block that cannot run here (Docker, a cluster, the
network, a server that runs until stopped) is preceded by a comment readers do not see:
``<!-- readme-test: skip (why) -->``.

The scratch directory starts with what the README's Python examples would have saved: a
model directory ``mnist-cnn`` (a small stand-in, so no TensorFlow is needed).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlreg.cli.exit_codes import exit_code_table
from tests.conftest import make_model_dir

README = Path(__file__).resolve().parent.parent / "README.md"
TEXT = README.read_text()

_BLOCK = re.compile(
    r"(?:<!-- readme-test: (?P<tag>[^\n]*?) -->\n)?```(?P<lang>sh|bash|console)\n(?P<body>.*?)^```",
    re.DOTALL | re.MULTILINE,
)
_SKIP = re.compile(r"skip \((?P<why>[^)]+)\)")
_EXIT = re.compile(r"\s+# exit (?P<code>\d+)$")


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    body: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"line-{self.line}"


def blocks() -> list[Block]:
    found = []
    for m in _BLOCK.finditer(TEXT):
        skip = None
        if m["tag"] is not None:
            tag = _SKIP.fullmatch(m["tag"])
            assert tag, f"README line {TEXT.count(chr(10), 0, m.start()) + 1}: bad tag {m['tag']!r}"
            skip = tag["why"]
        line = TEXT.count("\n", 0, m.start("lang")) + 1
        found.append(Block(line, m["lang"], m["body"], skip))
    return found


BLOCKS = blocks()
RUN = [b for b in BLOCKS if b.skip is None]


def test_every_shell_block_runs_or_says_why_not():
    assert len(BLOCKS) == TEXT.count("```sh\n") + TEXT.count("```console\n") + TEXT.count(
        "```bash\n"
    )
    assert len(RUN) >= 3, [b.line for b in RUN]
    for block in BLOCKS:
        assert block.skip is None or len(block.skip) > 5, block


def test_the_exit_code_table_is_made_from_mlreg_errors():
    start, end = "<!-- exit-codes:start -->\n", "\n<!-- exit-codes:end -->"
    quoted = TEXT[TEXT.index(start) + len(start) : TEXT.index(end)]
    assert quoted == exit_code_table(), (
        "the README's exit-code table is out of date: paste `python -m mlreg.cli.exit_codes`"
    )


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """One directory for every block, in order: they build on each other as a reader does."""
    root = tmp_path_factory.mktemp("readme")
    make_model_dir(root / "mnist-cnn")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLREG_", "AWS_", "MLFLOW_"))}
    env.update(
        HOME=str(root),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        MLREG_USER="reader",
        COLUMNS="200",
    )
    return root, env


def _pattern(expected: list[str]) -> re.Pattern[str]:
    parts = [re.escape(line).replace(re.escape("..."), ".*?") for line in expected]
    return re.compile("\n".join(parts) + "\n?", re.DOTALL)


def _console(body: str) -> list[tuple[str, int, list[str]]]:
    """(command, expected exit code, expected output lines) for each ``$`` line."""
    steps: list[tuple[str, int, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            command = line[2:]
            code = _EXIT.search(command)
            steps.append((command, int(code["code"]) if code else 0, []))
        else:
            assert steps, f"output before any command: {line!r}"
            steps[-1][2].append(line)
    return steps


@pytest.mark.parametrize("block", RUN, ids=[b.id for b in RUN])
def test_the_block_runs_as_the_readme_says(block, scratch):
    root, env = scratch
    if block.lang in ("sh", "bash"):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block.body],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"README line {block.line}:\n{done.stdout}{done.stderr}"
        return
    for command, code, expected in _console(block.body):
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
        )
        where = f"README line {block.line}: $ {command}\n{done.stdout}"
        assert done.returncode == code, where
        assert _pattern(expected).fullmatch(done.stdout), where
