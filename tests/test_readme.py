"""The README's examples run as written, and its command-line section is complete.

Every ```python block is run on its own, in a fresh interpreter (a subprocess with a
timeout), in an empty directory; the blocks that talk HTTP start their own receiver on
127.0.0.1 in the block itself, so that a reader sees the whole thing. A block marked
``<!-- not run: needs the network -->`` (on the line before it) is the only one skipped,
and visibly so. A block marked ``<!-- example: path -->`` is a file of one of the fixture
projects the server tests run (tests/background/apps): it runs in that project's
directory, as its server would import it. Each block is also checked for undefined names
(ruff F821), which a run cannot see in a function it does not call.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sendoff.cli import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
SKIP = "<!-- not run: needs the network -->"
#: a block for Celery workers needs a broker and workers of its own (tests/celery runs them)
SKIP_BROKER = "<!-- not run: needs a broker -->"
SKIPS = (SKIP, SKIP_BROKER)
EXAMPLE = re.compile(r"<!-- example: (\S+) -->")
RUFF = Path(sys.executable).with_name("ruff")


class Block:
    def __init__(self, line: int, code: str, marker: str) -> None:
        self.line = line
        self.code = code
        self.marker = marker

    def __repr__(self) -> str:
        return f"README.md:{self.line}"


def blocks() -> list[Block]:
    text = README.read_text()
    found = []
    for match in BLOCK.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(line, match.group(1), before if before.startswith("<!--") else ""))
    return found


BLOCKS = blocks()


def test_the_readme_has_blocks_and_skips_few() -> None:
    assert len(BLOCKS) >= 20
    skipped = [b for b in BLOCKS if b.marker in SKIPS]
    assert len(skipped) <= 3, skipped
    unknown = [b for b in BLOCKS if b.marker and b.marker not in SKIPS
               and not EXAMPLE.match(b.marker)]
    assert unknown == [], "only the network and broker markers skip a block"


#: the blocks run here; a marked one (a broker, the network) is not collected at all
RUNNABLE = [b for b in BLOCKS if b.marker not in SKIPS]


@pytest.mark.parametrize("block", RUNNABLE, ids=repr)
def test_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    cwd, env = tmp_path, {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    example = EXAMPLE.match(block.marker)
    if example:
        project = ROOT / "tests/background/apps"
        cwd = project
        env["PYTHONPATH"] = str(project)
        env["SENDOFF_TEST_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", block.code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, f"{block} failed:\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("block", BLOCKS, ids=repr)
def test_block_names_only_what_it_defines(block: Block) -> None:
    done = subprocess.run(
        [str(RUFF), "check", "--isolated", "--select", "F821,F811,F823", "--target-version",
         "py311", "--stdin-filename", "block.py", "-"],
        input=block.code, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, f"{block}:\n{done.stdout}"


def cli_section() -> str:
    text = README.read_text()
    start = text.index("## The command line")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def subcommand_parsers() -> dict[str, argparse.ArgumentParser]:
    """Each subcommand's parser, built as ``sendoff`` builds it."""
    parsers = {}
    for name, (_help, add_arguments, _run) in COMMANDS.items():
        parser = argparse.ArgumentParser(prog=f"sendoff {name}")
        add_arguments(parser)
        parsers[name] = parser
    return parsers


def test_the_cli_section_documents_every_flag_and_exit_code() -> None:
    section = cli_section()
    parsers = subcommand_parsers()
    assert set(parsers) == {"fire", "outbox", "request"}
    for name, parser in parsers.items():
        assert f"sendoff {name}" in section
        for action in parser._actions:
            for flag in action.option_strings:
                assert re.search(rf"`[^`]*{re.escape(flag)}\b", section), f"{name} {flag}"
    for code in ("`0`", "`1`", "`2`"):
        assert code in section


def test_the_readme_cites_no_file_outside_the_repository() -> None:
    text = README.read_text()
    assert "DESIGN.md" not in text
    for path in re.findall(r"`((?:tests|bench|demo|src)/[\w/.-]+)`", text):
        if path.startswith("bench/results/"):
            continue  # what `make bench` writes
        assert (ROOT / path).exists(), path
