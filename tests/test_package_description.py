"""The package index's page: current with the README, and readable without
the repository (no relative links, no make steps)."""

import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).parents[1]


@pytest.fixture()
def tool():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import package_description

        yield package_description
    finally:
        sys.path.remove(str(ROOT / "tools"))


def test_the_package_description_is_the_readme_sections(tool):
    readme = (ROOT / "README.md").read_text()
    assert tool.OUTPUT.read_text() == tool.render(readme), (
        "package-description.md is stale: python tools/package_description.py"
    )
    assert 'readme = "package-description.md"' in (ROOT / "pyproject.toml").read_text()


def test_the_package_description_stands_alone(tool):
    text = tool.OUTPUT.read_text()
    targets = re.findall(r"\]\(([^)]+)\)", text)
    assert all(t.startswith(("http://", "https://")) for t in targets), targets
    assert not re.search(r"\bmake \w", text), "make steps need the repository"
    assert "pip install" in text and "```python" in text  # install, quickstart
