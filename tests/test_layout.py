"""The package layout of `../shared/DESIGN.md`: packages by role, seams that
point one way. Read from the source, so a new import that breaks a rule fails
here, not in a user's install."""

import ast
import pathlib

import keras_adv

ROOT = pathlib.Path(keras_adv.__file__).parent
FRAMEWORKS = {"tensorflow", "jax", "jaxlib", "torch"}


def imports(path):
    """Top-level names of every module `path` imports (at any depth)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def modules(*exclude):
    for path in sorted(ROOT.rglob("*.py")):
        part = path.relative_to(ROOT).parts[0]
        if part not in exclude:
            yield path


def test_the_top_level_holds_only_what_every_package_shares():
    top = sorted(p.name for p in ROOT.glob("*.py"))
    assert top == [
        "__init__.py",
        "__main__.py",
        "argument_validation.py",
        "losses.py",
        "metrics.py",
        "norms.py",
    ]
    packages = sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").exists())
    assert packages == [
        "attacks",
        "backend",
        "callbacks",
        "evaluation",
        "experiments",
        "training",
    ]


def test_the_library_never_imports_the_experiments():
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imports(path) if name.startswith("keras_adv.experiments")
        )
        for path in modules("experiments", "__main__.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_the_backend_imports_a_framework():
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imports(path) if name.split(".")[0] in FRAMEWORKS
        )
        for path in modules("backend")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_every_module_opens_with_a_sentence_saying_what_it_is():
    missing = [
        str(path.relative_to(ROOT))
        for path in modules()
        if not ast.get_docstring(ast.parse(path.read_text()))
    ]
    assert missing == []
