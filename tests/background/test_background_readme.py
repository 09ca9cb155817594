"""The README's after-response recipes are the fixture apps the server tests run."""

from __future__ import annotations

import re
from pathlib import Path

from tests.background.servers import APPS, TARGETS, Served, start, wait_until

ROOT = APPS.parents[2]
RESULT = "background-processing.txt"
SECTION = "## After-response background work"
EXAMPLE = re.compile(r"<!-- example: (\S+) -->\n```python\n(.*?)```", re.S)


def examples() -> list[tuple[str, str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index(SECTION):]
    return EXAMPLE.findall(section)


def test_every_recipe_is_in_a_fixture_app_that_a_server_test_runs() -> None:
    found = examples()
    assert {Path(path).stem for path, _ in found} >= {
        "flask_app", "fastapi_app", "starlette_app", "wsgi", "asgi", "views",
        "plain_wsgi", "plain_asgi", "seed_example",
    }
    served = {t.app.split(":")[0] for t in TARGETS} | {"seed_example", "mysite.views"}
    for path, block in found:
        module = Path(path).relative_to("tests/background/apps").with_suffix("").as_posix()
        assert module.replace("/", ".") in served, path
        source = (ROOT / path).read_text().splitlines()
        at = 0
        for line in (raw.rstrip() for raw in block.splitlines()):
            if not line or line.strip() == "...":
                continue
            assert line in source[at:], f"{path}: README line not found in order: {line!r}"
            at = source.index(line, at) + 1


def test_seed_example_writes_seven_while_the_response_says_zero(tmp_path: Path) -> None:
    server = start("gunicorn-sync", "seed_example:application", tmp_path,
                   env={"TMPDIR": str(tmp_path)})
    served = Served(server, tmp_path)
    try:
        status, body = served.request("/")
        assert status == 200
        assert body.decode() == (
            f"Current sum value is 0. Please check file {served.path(RESULT)} in the web"
            " server; final sum value there should be 7.\n"
        )
        result = served.path(RESULT)  # written in place by the example: wait for the 7
        assert wait_until(lambda: result.exists() and result.read_text()) == "7"
    finally:
        server.stop()
