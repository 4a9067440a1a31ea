"""Recipes that reproduce papers: run one, and put our numbers beside theirs.

A recipe is a TOML file (the bundled ones are in `recipes/`, listed by
`keras-adv reproduce --list`) with four parts:

- `name`: one line saying what it reproduces;
- `[paper]`: `title`, `authors`, `year`, `arxiv`, `where` (the table or
  section the numbers come from) and `differences` (what this recipe does
  not do as the paper did);
- `[sweep]`: the training and evaluation, in the keys of a `keras-adv
  sweep` config file (one training epsilon: the paper's);
- `[[published]]` rows: `metric` (`clean_accuracy` or `robust_accuracy`),
  for robust accuracy the `attack` (a sweep attack name or `"worst case"`)
  and `epsilon`, the `value` (a fraction), optionally `relation` (`"="`,
  the default, or `"<="` for an upper bound) and a `note`.

`run` trains and evaluates with `sweep.run_sweep` (so a recipe's run is
resumable like any sweep) and writes `reproduction.md`: each published
number beside ours, and whether the run was shortened.
"""

import dataclasses
import math
import os

from keras_adv.attacks.names import WORST_CASE
from keras_adv.experiments import cli_options
from keras_adv.experiments import results_store
from keras_adv.experiments.cli_options import UsageError
from keras_adv.experiments.results_store import write_atomically

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

RECIPES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipes")
REPORT = "reproduction.md"
_TOP_KEYS = {"name", "paper", "sweep", "published"}
_PAPER_KEYS = {"title", "authors", "year", "arxiv", "where", "differences"}
_ROW_KEYS = {"metric", "attack", "epsilon", "value", "relation", "note"}
# The shape of one example of each dataset a recipe may name, for smoke tests.
EXAMPLE_SHAPES = {
    "digits": (8, 8, 1),
    "mnist": (28, 28, 1),
    "fashion_mnist": (28, 28, 1),
    "cifar10": (32, 32, 3),
}


@dataclasses.dataclass(frozen=True)
class Published:
    """One number a paper reports for the model its recipe trains."""

    metric: str  # "clean_accuracy" or "robust_accuracy"
    value: float
    attack: str | None = None  # an attack name or WORST_CASE (robust only)
    epsilon: float | None = None
    relation: str = "="  # "<=": the paper gives an upper bound
    note: str = ""

    def label(self):
        if self.metric == "clean_accuracy":
            return "clean accuracy"
        return f"robust accuracy, {self.attack} at eps {self.epsilon:g}"


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A paper's training and evaluation, and the numbers it published."""

    key: str  # the file's stem: what `keras-adv reproduce KEY` takes
    name: str
    paper: dict
    options: dict  # checked `[sweep]` options, config keys
    published: tuple

    def settings(self, **overrides):
        """The recipe's `SweepSettings`; `overrides` (config keys) replace fields."""
        checked = {key: cli_options.check(key, v) for key, v in overrides.items()}
        return cli_options.sweep_settings({**self.options, **checked})


def names():
    """The bundled recipes' keys, sorted."""
    return sorted(
        file[: -len(".toml")]
        for file in os.listdir(RECIPES_DIR)
        if file.endswith(".toml")
    )


def load(key_or_path):
    """The recipe `key_or_path` names: a bundled key or a `.toml` path.

    Raises:
        UsageError: naming the file and what to change, for an unknown
            recipe, an unreadable file, or a missing or ill-typed entry.
    """
    path = key_or_path
    if not key_or_path.endswith(".toml"):
        path = os.path.join(RECIPES_DIR, f"{key_or_path}.toml")
        if not os.path.isfile(path):
            raise UsageError(
                f"no recipe named {key_or_path!r}; the recipes are "
                f"{', '.join(names())}, or pass a .toml file"
            )
    try:
        with open(path, "rb") as handle:
            table = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"cannot read recipe {path}: {error}") from None
    _known(table, _TOP_KEYS, path, "")
    for part in ("name", "paper", "sweep", "published"):
        if part not in table:
            raise UsageError(
                f"recipe {path} has no {part!r}; see keras-adv reproduce --help"
            )
    paper = table["paper"]
    _known(paper, _PAPER_KEYS, path, "[paper] ")
    sweep = {key.replace("-", "_"): value for key, value in table["sweep"].items()}
    _known(sweep, set(cli_options.SWEEP_KEYS), path, "[sweep] ")
    options = {key: cli_options.check(key, value, path) for key, value in sweep.items()}
    if len(options.get("train_eps", ())) != 1:
        raise UsageError(
            f"[sweep] train_eps in {path} must hold one epsilon, the paper's "
            f"training budget. Received: {options.get('train_eps')!r}"
        )
    recipe = Recipe(
        key=os.path.basename(path)[: -len(".toml")],
        name=str(table["name"]),
        paper=dict(paper),
        options=options,
        published=tuple(_row(row, path) for row in table["published"]),
    )
    settings = recipe.settings()  # every field checked together
    for row in recipe.published:
        if row.metric == "robust_accuracy":
            known = {*settings.attacks, WORST_CASE}
            if row.attack not in known or row.epsilon not in settings.attack_epsilons:
                raise UsageError(
                    f"[[published]] {row.label()} in {path} is not measured by its "
                    f"[sweep]: attacks {sorted(known)}, attack_eps "
                    f"{list(settings.attack_epsilons)}"
                )
    return recipe


def _known(table, allowed, path, where):
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise UsageError(
            f"unknown key(s) {unknown} in {where}of {path}; known: {sorted(allowed)}"
        )


def _row(row, path):
    _known(row, _ROW_KEYS, path, "[[published]] ")
    metric = row.get("metric")
    value = row.get("value")
    good = (
        metric in ("clean_accuracy", "robust_accuracy")
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
        and 0.0 <= value <= 1.0
        and row.get("relation", "=") in ("=", "<=")
        and (
            metric == "clean_accuracy"
            or (isinstance(row.get("attack"), str) and "epsilon" in row)
        )
    )
    if not good:
        raise UsageError(
            f"[[published]] row {row!r} in {path} needs metric clean_accuracy or "
            "robust_accuracy, a value in [0, 1] (a fraction, not a percentage), "
            "relation '=' or '<=', and for robust accuracy an attack and epsilon"
        )
    attack = row.get("attack")
    if attack is not None and attack != WORST_CASE:
        attack = cli_options.check("attacks", [attack], path)[0]
    epsilon = row.get("epsilon")
    return Published(
        metric=metric,
        value=float(value),
        attack=attack,
        epsilon=None if epsilon is None else float(epsilon),
        relation=row.get("relation", "="),
        note=str(row.get("note", "")),
    )


def ours(row, results):
    """Our number for a published row, from a finished sweep's `results`."""
    train_eps = results["settings"]["train_epsilons"][0]
    cells = [c for c in results["cells"] if c["train_epsilon"] == train_eps]
    if row.metric == "clean_accuracy":
        return cells[0]["clean_accuracy"] if cells else math.nan
    for cell in cells:
        if cell["attack"] == row.attack and cell["attack_epsilon"] == row.epsilon:
            return cell["robust_accuracy"]
    return math.nan


def markdown(recipe, results, shortened):
    """The comparison a person reads: paper, what differs, ours beside theirs."""
    paper = recipe.paper
    settings = results["settings"]
    lines = [
        f"# Reproduction: {recipe.name}",
        "",
        f"{paper.get('authors', '')} ({paper.get('year', '')}), "
        f'"{paper.get("title", "")}", arXiv:{paper.get("arxiv", "")}; '
        f"numbers from {paper.get('where', 'the paper')}.",
        "",
        f"Model `{settings['model']}` on `{settings['dataset']}`, trained at eps "
        f"{settings['train_epsilons'][0]:g} with `{settings['train_attack']}`, "
        f"{_epochs(settings['epochs'])}; evaluated on "
        f"{_test_examples(results)} test examples. The sweep's report.md "
        "has the full tables and the sanity checks.",
    ]
    if paper.get("differences"):
        lines += ["", f"Differences from the paper: {paper['differences']}"]
    if shortened:
        lines += [
            "",
            "**Shortened run, not comparable to the paper**: "
            + "; ".join(shortened)
            + ".",
        ]
    lines += ["", "| | ours | paper | ours - paper |", "|---|---|---|---|"]
    for row in recipe.published:
        mine = ours(row, results)
        bound = "<= " if row.relation == "<=" else ""
        note = f" ({row.note})" if row.note else ""
        lines.append(
            f"| {row.label()}{note} | {mine:.4f} | {bound}{row.value:.4f} | "
            f"{mine - row.value:+.4f} |"
        )
    seconds = sum(entry.get("seconds", 0.0) for entry in results["training"].values())
    lines += ["", f"Training took {seconds / 60:.1f} minutes."]
    return "\n".join(lines) + "\n"


def _epochs(count):
    return f"{count} epoch" + ("" if count == 1 else "s")


def _test_examples(results):
    available = results.get("data", {}).get("test_examples", math.inf)
    return min(results["settings"]["max_test_examples"], available)


def shortened_by(recipe, overrides):
    """What `overrides` cut from the recipe, said per field ([] when nothing)."""
    cuts = []
    for key, value in overrides.items():
        planned = recipe.options.get(key)
        if planned is not None and value < planned:
            cuts.append(f"{key} {value} of the recipe's {planned}")
    return cuts


def run(
    recipe,
    out_dir,
    overrides=None,
    overwrite=False,
    verbose=0,
    on_cell=None,
    progress=None,
):
    """Runs (or resumes) `recipe` into `out_dir`; writes its reports.

    Args:
        recipe: a `Recipe` (`load`).
        out_dir: the run's folder: the sweep's files and `reproduction.md`.
        overrides: config keys to replace, e.g. `{"epochs": 2}` for a
            shortened run (the report says it is one). Defaults to `None`.
        overwrite, verbose, on_cell, progress: as for `sweep.run_sweep`.

    Returns:
        `(results, text)`: the sweep's results and the comparison's markdown.
    """
    from keras_adv.experiments.report import write_report
    from keras_adv.experiments.sweep import run_sweep

    overrides = dict(overrides or {})
    settings = recipe.settings(**overrides)
    results = run_sweep(
        settings,
        out_dir,
        overwrite=overwrite,
        verbose=verbose,
        on_cell=on_cell,
        progress=progress,
    )
    text = markdown(recipe, results, shortened_by(recipe, overrides))
    with results_store.locked(out_dir):  # the folder's own files
        write_report(results, out_dir)
        write_atomically(os.path.join(out_dir, REPORT), lambda h: h.write(text))
    return results, text


def smoke_test(recipe, examples=4):
    """One training step of the recipe on random data of its dataset's shape.

    Builds the recipe's model and training (optimizer, schedule, attack,
    objective, augmentation) and trains one batch of `examples` random
    images; with robust early stopping as many again are held out (a split
    of 0.5, so the held-out evaluation runs too). For the suite: a recipe
    whose data are not on this machine still gets built and run. Returns
    `sweep.train_model`'s `(model, record)`.
    """
    import numpy as np

    from keras_adv.experiments.sweep import train_model

    overrides = {"epochs": 1, "batch_size": examples}
    count = examples
    if recipe.options.get("early_stopping_split"):
        overrides["early_stopping_split"] = 0.5
        count = 2 * examples
    settings = recipe.settings(**overrides)
    shape = EXAMPLE_SHAPES[settings.dataset]
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(count, *shape)).astype("float32")
    y = (np.arange(count) % 10).astype("int32")
    # Ten test labels: the model gets the ten classes of every recipe's data.
    test = (
        rng.uniform(size=(10, *shape)).astype("float32"),
        np.arange(10, dtype="int32"),
    )
    return train_model(settings, settings.train_epsilons[0], ((x, y), test))
