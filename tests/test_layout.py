"""The package layout of `../shared/DESIGN.md`: packages by role, seams that
point one way. Read from the source, so a new import that breaks a rule fails
here, not in a user's install."""

import ast
import pathlib
import re

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

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
        "compat",
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


INTERNALS = "training/keras_internals.py"


def _keras_private_names():
    """Private attribute names of the Keras objects keras-adv works with."""
    import keras

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile("adam", "mse", metrics=["mae"])
    objects = [
        model,
        model.layers[-1],
        model.output,
        model.optimizer,
        keras.metrics.Mean(),
        keras.losses.MeanSquaredError(),
        keras.callbacks.Callback(),
        keras.Variable(1.0),
        keras.random.SeedGenerator(1),
    ]
    return {
        name
        for obj in objects
        for name in dir(obj)
        if name.startswith("_") and not name.startswith("__")
    }


def private_accesses():
    """`{module: sorted private names it reads}` for names keras-adv does not
    define itself, or that Keras's own objects define (an attribute keras-adv
    sets on a Keras object under a Keras name is Keras's too)."""
    trees = {path: ast.parse(path.read_text()) for path in modules()}
    ours = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                ours.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                ours.add(node.attr)
    keras_names = _keras_private_names()
    found = {}
    for path, tree in trees.items():
        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Attribute):
                name = node.attr
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) in {"getattr", "hasattr", "setattr"}
                and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant)
            ):
                name = node.args[1].value
            elif isinstance(node, ast.ImportFrom) and node.module:
                name = next(
                    (p for p in node.module.split(".") if p.startswith("_")), None
                )
            if (
                isinstance(name, str)
                and name.startswith("_")
                and not name.startswith("__")
                and (name not in ours or name in keras_names)
            ):
                found.setdefault(str(path.relative_to(ROOT)), set()).add(name)
    return {module: sorted(names) for module, names in found.items()}


def test_keras_internals_are_read_in_one_module_and_the_list_is_pinned():
    # A new private access elsewhere fails here: move it to keras_internals.py
    # with a comment saying why no public API does it, and add it below.
    assert private_accesses() == {INTERNALS: ["_inbound_nodes", "_keras_history"]}


def test_the_backend_works_on_tensors_and_callables_not_keras_adv_classes():
    offenders = {}
    for path in modules():
        if path.relative_to(ROOT).parts[0] != "backend":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "keras_adv"
            ):
                if not node.module.startswith("keras_adv.backend"):
                    offenders.setdefault(path.name, []).append(node.module)
            elif (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                offenders.setdefault(path.name, []).append(ast.unparse(node))
    assert offenders == {}


def test_ci_tests_the_lower_bound_of_the_keras_range():
    repo = ROOT.parent
    if not (repo / "Makefile").exists():
        pytest.skip("an installed keras-adv, not the repository")
    pyproject = tomllib.loads((repo / "pyproject.toml").read_text())
    keras_spec = next(
        d for d in pyproject["project"]["dependencies"] if d.startswith("keras")
    )
    lower = re.search(r">=\s*([\d.]+)", keras_spec).group(1)
    oldest = re.search(
        r"^KERAS_OLDEST \?= (\S+)$", (repo / "Makefile").read_text(), re.M
    )
    assert oldest is not None and oldest.group(1) == lower
    assert "make test-oldest-keras" in (repo / ".ci" / "run").read_text()


def test_no_backend_is_required_and_each_has_its_extra():
    repo = ROOT.parent
    if not (repo / "Makefile").exists():
        pytest.skip("an installed keras-adv, not the repository")
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    required = {re.split(r"[\s<>=!~;\[]", d)[0] for d in project["dependencies"]}
    assert required.isdisjoint(FRAMEWORKS), required & FRAMEWORKS
    extras = project["optional-dependencies"]
    for framework in ("tensorflow", "jax", "torch"):
        (spec,) = extras[framework]
        # A range: an exact pin belongs to the Makefile (the CPU torch build).
        assert spec.startswith(framework) and "==" not in spec, spec
    # CI installs it as a user would, without TensorFlow, and runs the job;
    # it builds the documentation site in strict mode.
    ci = (repo / ".ci" / "run").read_text()
    assert "make check-install" in ci and "make docs" in ci
