"""Writes `package-description.md`, the package index's page, from README.md.

The README's introduction, install and quickstart sections (between the
`--8<--` markers the documentation site includes too): no relative link and
no make step, so a package index renders it without the repository. Run
`python tools/package_description.py` after editing those sections;
`tests/test_package_description.py` fails while the file is stale.
"""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "package-description.md"
SECTIONS = (("intro", None), ("install", "Install"), ("quickstart", "Quickstart"))


def section(readme, name):
    """The README's text between `[start:name]` and `[end:name]`."""
    start, end = f"<!-- --8<-- [start:{name}] -->", f"<!-- --8<-- [end:{name}] -->"
    if start not in readme or end not in readme:
        raise ValueError(f"README.md has no {start} ... {end} section")
    return readme.split(start, 1)[1].split(end, 1)[0].strip()


def render(readme):
    """The package description made of the README's sections."""
    parts = ["# keras-adv"]
    for name, title in SECTIONS:
        if title:
            parts.append(f"## {title}")
        parts.append(section(readme, name))
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render((ROOT / "README.md").read_text()))
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
