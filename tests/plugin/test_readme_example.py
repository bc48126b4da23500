"""The README's example of a user's test (its "Testing your pipelines" section) is itself
run, as a generated test file, on both engines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

# pytester, registered by this module (a conftest below the root may not name plugins).
pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parents[2] / "README.md"
_EXAMPLE = re.compile(
    r"<!-- odibi-testing-example -->\s*```python\n(?P<code>.*?)```\s*"
    r"<!-- /odibi-testing-example -->",
    re.DOTALL,
)


def readme_example(text: str) -> str | None:
    """The python block between the README's example markers, or None."""
    found = _EXAMPLE.search(text)
    return found.group("code") if found else None


def test_the_example_is_found_between_its_markers():
    text = "intro\n<!-- odibi-testing-example -->\n```python\nx = 1\n```\n<!-- /odibi-testing-example -->\n"
    assert readme_example(text) == "x = 1\n"
    assert readme_example("no markers here") is None


@pytest.mark.spark
def test_the_readme_example_passes_on_both_engines(pytester, run_generated, request):
    code = readme_example(README.read_text(encoding="utf-8"))
    if code is None:
        pytest.skip(
            "README.md has no <!-- odibi-testing-example --> ... "
            "<!-- /odibi-testing-example --> block yet (the 'Testing your pipelines' section)"
        )
    request.getfixturevalue("spark")  # the generated run takes this process's session
    pytester.makepyfile(test_readme_example=code)
    result = run_generated("-v")
    result.stdout.fnmatch_lines(["*?pandas? PASSED*", "*?spark? PASSED*"])
    result.assert_outcomes(passed=2)
