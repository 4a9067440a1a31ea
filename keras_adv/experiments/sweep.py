"""The attack strength vs defense effect grid: computation, resumable.

For each training budget, train the model (the reference CNN, a zoo name, the
user's `.keras` file or builder function: `model_source`) with
`AdversarialModel`;
attack each trained model with each attack at each budget and record clean
and robust accuracy, measured perturbation norms, prediction drift and flip
rate; then, per trained model, the worst case over the attacks (an example
counts as robust only if no attack broke it) and the sanity checks of
`keras_adv.sanity_checks`. Every finished step is written to `results.json`
atomically (`results_store`), so an interrupted sweep rerun with the same
settings on the same data (identified by content) skips what is done.
Rendering lives in `report.py`; the command line in `cli.py`.
"""

import dataclasses
import glob
import json
import os
import platform
import time
from importlib import metadata

import keras
import numpy as np

from keras_adv import __version__
from keras_adv import argument_validation as validation
from keras_adv.attacks import names as attack_names
from keras_adv.attacks.names import WORST_CASE
from keras_adv.evaluation import sanity_checks
from keras_adv.evaluation.probe import ProbeSet
from keras_adv.evaluation.probe import standard_metrics
from keras_adv.evaluation.robustness import worst_case
from keras_adv.experiments import model_source
from keras_adv.experiments import recipe
from keras_adv.experiments import results_store
from keras_adv.experiments.data import fingerprint
from keras_adv.experiments.data import load
from keras_adv.experiments.progress import Progress
from keras_adv.experiments.results_store import RESULTS
from keras_adv.experiments.results_store import ResultsFolderError
from keras_adv.experiments.results_store import write_json as _write_json
from keras_adv.training.adversarial_model import AdversarialModel

CHECK_TOLERANCE = 0.02  # accuracy difference the sanity checks allow


@dataclasses.dataclass(frozen=True)
class SweepSettings:
    """Everything that determines a sweep's numbers (and so, its folder)."""

    dataset: str = "digits"
    train_epsilons: tuple = (0.0, 0.05, 0.1, 0.2)
    attack_epsilons: tuple = (0.0, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3)
    attacks: tuple = ("fgsm", "pgd20")
    train_attack: str = "pgd7"
    objective: str = "madry"
    epochs: int = 15
    batch_size: int = 64
    max_test_examples: int = 1000
    seed: int = 0
    checks: bool = True  # run keras_adv.sanity_checks per trained model
    model: str = "small_cnn"  # a zoo name, a .keras file or module:function
    init: str = "fresh"  # "weights": a .keras file's own weights
    # The training recipe (`recipe`); None: the choice's own default.
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float | None = None  # sgd only (0.9 when None)
    nesterov: bool = False  # sgd only
    weight_decay: float = 0.0  # decoupled
    lr_schedule: str = "constant"
    lr_milestones: tuple | None = None  # piecewise only (0.5, 0.75 when None)
    train_relative_step_size: float | None = None  # x epsilon; attack's own
    train_random_start: bool | None = None  # the attack's own when None
    mixed_alpha: float | None = None  # objective mixed only (0.5 when None)
    trades_beta: float | None = None  # objective trades only (6 when None)
    crop_padding: int = 0  # random crop after this much zero padding
    flip: bool = False  # random horizontal flip
    early_stopping_split: float = 0.0  # held out for robust early stopping

    def __post_init__(self):
        for name in ("train_epsilons", "attack_epsilons", "attacks"):
            values = tuple(getattr(self, name))
            if not values:
                raise ValueError(f"Argument `{name}` must not be empty.")
            object.__setattr__(self, name, values)
        for eps in self.train_epsilons:
            validation.check_epsilon(eps, "train_epsilons")
        for eps in self.attack_epsilons:
            validation.check_epsilon(eps, "attack_epsilons")
        # One spelling per attack (raises on an unknown name): "PGD-20" and
        # "pgd20" are one attack, so one column and one resumable cell.
        object.__setattr__(
            self,
            "attacks",
            tuple(dict.fromkeys(map(attack_names.canonical, self.attacks))),
        )
        object.__setattr__(
            self, "train_attack", attack_names.canonical(self.train_attack)
        )
        for name in ("epochs", "batch_size", "max_test_examples"):
            validation.check_positive(getattr(self, name), name, integer=True)
        model_source.kind(self.model)  # ModelSourceError (a ValueError) if none
        if self.init not in model_source.INITS:
            raise ValueError(
                f"Argument `init` must be one of {model_source.INITS}. "
                f"Received: init={self.init!r}"
            )
        if self.lr_milestones is not None:
            object.__setattr__(self, "lr_milestones", tuple(self.lr_milestones))
        recipe.check(self)


def _versions():
    backend = keras.backend.backend()
    return {
        "keras_adv": __version__,
        "keras": keras.__version__,
        "backend": backend,
        backend: metadata.version(backend),  # tensorflow, jax or torch
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _attack_configs(settings):
    """The full hyperparameters behind each attack name (epsilon set per cell)."""
    names = {*settings.attacks, settings.train_attack}
    return {
        name: attack_names.get(name, 0.0, settings.seed).get_config() for name in names
    }


def _data_record(settings, data):
    """What identifies the sweep's data: its name and a hash of its content."""
    (x_train, _), (x_test, _) = data
    return {
        "dataset": settings.dataset,
        "sha256": fingerprint(data),
        "train_examples": len(x_train),
        "test_examples": len(x_test),
        "input_shape": list(x_train.shape[1:]),
    }


def _prepare_folder(out_dir, settings, data, overwrite):
    """Loads the results of an earlier run of the same settings and data, or
    starts anew; `ResultsFolderError` where that would lose or mix results."""
    path = os.path.join(out_dir, RESULTS)
    wanted = dataclasses.asdict(settings)
    record = _data_record(settings, data)
    model = model_source.describe(settings.model)
    try:
        results = results_store.read(out_dir)
    except ResultsFolderError:
        if not overwrite:
            raise
        results = None  # damaged: --overwrite starts over, as the refusal offers
    if results is not None and results_store.holds_work(results):
        before = results.get("data", {}).get("sha256")
        same_model = results.get("model", _DEFAULT_MODEL) == model
        if _same(_settings_of(results), wanted) and before == record["sha256"]:
            if same_model:
                return results  # resume, --overwrite or not: nothing to replace
        if not overwrite:
            raise ResultsFolderError(_mismatch(out_dir, settings, results, record))
    models = os.path.join(out_dir, "models")
    if overwrite or results is not None:  # the replaced sweep's models go too;
        for path in glob.glob(os.path.join(models, "train_eps_*.keras")):
            os.remove(path)  # only files named as the sweep names them
    os.makedirs(models, exist_ok=True)
    results = {
        "settings": wanted,
        "data": record,
        "model": model,
        "attack_configs": _attack_configs(settings),
        "versions": _versions(),
        "training": {},
        "cells": [],
        "checks": [],
    }
    _write_json(path, results)
    return results


# Sweeps from before `--model` trained the reference CNN: they resume as such.
_DEFAULT_MODEL = {"source": "small_cnn", "kind": "zoo"}


def _settings_of(results):
    """The folder's settings, with the defaults of fields added since it was made
    (every field's default is the behaviour from before it existed)."""
    defaults = dataclasses.asdict(SweepSettings())
    return {**defaults, **results["settings"]}


def _mismatch(out_dir, settings, results, record):
    """Why the folder's results cannot be resumed with these settings and data."""
    if not _same(_settings_of(results), dataclasses.asdict(settings)):
        return (
            f"{out_dir} holds a sweep with other settings; use another --name, "
            "or pass --overwrite to replace it."
        )
    before = results.get("data", {}).get("sha256")
    if before == record["sha256"]:
        return (
            f"--model {settings.model} changed since {os.path.join(out_dir, RESULTS)} "
            "was made (its content hash differs): its cells would mix two models. "
            "Use another --name, or pass --overwrite to redo the sweep."
        )
    then = f"sha256 {before[:12]}... then" if before else "not recorded"
    return (
        f"the data of --dataset {settings.dataset} differ from those that "
        f"{os.path.join(out_dir, RESULTS)} was made with ({then}, "
        f"{record['sha256'][:12]}... now): its cells would mix two datasets. "
        "Use another --name, or pass --overwrite to redo the sweep on the new data."
    )


def _same(saved, wanted):
    return json.loads(json.dumps(saved)) == json.loads(json.dumps(wanted))


def train_model(settings, eps, data, verbose=0, callbacks=()):
    """`settings.model` trained on `data` at budget `eps` (clean when 0),
    with the recipe of `settings` (`recipe`).

    Every budget starts from the same initial weights (`settings.seed`).
    Returns `(model, record)`: an `AdversarialModel` when `eps > 0`, and a
    dict with the training's `seconds`, `epochs` and, with robust early
    stopping, `early_stopping` (held-out robust accuracy of the last and the
    best epoch; the model holds the best epoch's weights). `callbacks` are
    added to `fit`'s (e.g. a `progress.Progress`).
    """
    (x_train, y_train), (_, y_test) = data
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    model, from_logits = model_source.build(
        settings.model, x_train.shape[1:], num_classes, settings.seed, settings.init
    )
    if eps > 0:
        model = AdversarialModel(
            model=model,
            attack=recipe.training_attack(settings, eps),
            objective=recipe.objective(settings),
        )
    (x_fit, y_fit), held_out = recipe.split_for_early_stopping(
        settings, x_train, y_train
    )
    steps_per_epoch = -(-len(x_fit) // settings.batch_size)
    model.compile(
        recipe.optimizer(settings, steps_per_epoch),
        keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
        metrics=["accuracy"],
    )
    stopping = []
    if held_out is not None:
        stopping = recipe.early_stopping_callbacks(settings, eps, held_out, from_logits)
    callbacks = [*stopping, *callbacks]  # the monitor's logs first
    if recipe.augmenting(settings):
        batches = recipe.AugmentedBatches(
            x_fit,
            y_fit,
            settings.batch_size,
            settings.crop_padding,
            settings.flip,
            settings.seed,
        )
        fit_data = {"x": batches}
    else:
        fit_data = {"x": x_fit, "y": y_fit, "batch_size": settings.batch_size}
    start = time.perf_counter()
    history = model.fit(
        **fit_data, epochs=settings.epochs, verbose=verbose, callbacks=callbacks
    )
    record = {
        "seconds": time.perf_counter() - start,
        "epochs": len(history.epoch),
    }
    stopping = recipe.early_stopping_record(history.history)
    if stopping is not None:
        record["early_stopping"] = stopping
    return model, record


def run_sweep(
    settings, out_dir, overwrite=False, verbose=0, on_cell=None, progress=None
):
    """Runs (or resumes) a sweep into `out_dir`; returns the results dict.

    Args:
        settings: a `SweepSettings`.
        out_dir: the run's folder: `results.json` and `models/` go there.
        overwrite: replace a sweep with other settings in `out_dir`.
            Defaults to `False` (such a folder is refused).
        verbose: Keras's `fit` verbosity for training. Defaults to 0.
        on_cell: called with each newly finished cell (a dict), e.g. to
            print progress. Defaults to `None`.
        progress: called with one line per training epoch: which model of
            the sweep, the epoch, accuracies, time left (`progress.Progress`).
            Defaults to `None`.
    """
    data = load(settings.dataset, seed=settings.seed)  # checked before any write
    os.makedirs(out_dir, exist_ok=True)
    with results_store.locked(out_dir):
        results = _prepare_folder(out_dir, settings, data, overwrite)
        _fill(settings, out_dir, data, results, verbose, on_cell, progress)
    return results


def _fill(settings, out_dir, data, results, verbose, on_cell, progress=None):
    """Computes what `results` lacks, writing it after every step."""
    test = ProbeSet(data[1], max_examples=settings.max_test_examples)
    # Cells of an older keras-adv lack per-example results: they are redone.
    results["cells"] = [c for c in results["cells"] if "robust_examples" in c]
    results.setdefault("checks", [])
    done = {
        (c["train_epsilon"], c["attack"], c["attack_epsilon"]) for c in results["cells"]
    }
    checked = {entry["train_epsilon"] for entry in results["checks"]}
    untrained = [
        eps
        for eps in settings.train_epsilons
        if _saved_model(out_dir, results, eps) is None
    ]
    for train_eps in settings.train_epsilons:
        todo = [
            (name, eps)
            for name in settings.attacks
            for eps in settings.attack_epsilons
            if (train_eps, name, eps) not in done
        ]
        if not todo and train_eps in checked:
            continue
        callbacks = []
        if progress is not None and train_eps in untrained:
            place = untrained.index(train_eps)
            label = f"model {place + 1}/{len(untrained)} (train eps {train_eps:g})"
            callbacks = [Progress(progress, label, len(untrained) - place - 1)]
        model = _trained_model(
            settings, train_eps, data, out_dir, results, verbose, callbacks
        )
        # One attack and one metric set per name: compiled once, the budget
        # of each cell passed as a tensor.
        tools = {
            name: (attack_names.get(name, 0.0, settings.seed), standard_metrics())
            for name in settings.attacks
        }
        starts = {name: _rng_state(attack) for name, (attack, _) in tools.items()}
        clean = None  # per example, from the cells' own runs
        for name, eps in todo:
            attack, metrics = tools[name]
            # Each cell draws from the attack's initial random state, so a
            # resumed sweep gives what an uninterrupted one does.
            attack.seed_generator.state.assign(starts[name])
            outcome = test.run(model, attack, metrics, epsilon=eps)
            clean = outcome.clean
            cell = {
                "train_epsilon": train_eps,
                "attack": name,
                "attack_epsilon": eps,
                **outcome.values,
                "robust_examples": _pack(outcome.correct),
            }
            results["cells"].append(cell)
            _write_json(os.path.join(out_dir, RESULTS), results)
            if on_cell is not None:
                on_cell(cell)
        attacks = {name: attack for name, (attack, _) in tools.items()}
        for name, attack in attacks.items():
            attack.seed_generator.state.assign(starts[name])
        if clean is None:  # resumed after every cell was done
            clean = test.clean_correct(model)
        _add_worst_case_and_checks(
            settings, model, test, clean, attacks, results, train_eps
        )
        _write_json(os.path.join(out_dir, RESULTS), results)


def _rng_state(attack):
    return keras.ops.convert_to_numpy(attack.seed_generator.state)


def _pack(flags):
    """Per-example booleans as a hex string (one bit each), for results.json."""
    return np.packbits(np.asarray(flags, bool)).tobytes().hex()


def _unpack(text, count):
    return np.unpackbits(np.frombuffer(bytes.fromhex(text), np.uint8))[:count] > 0


def _add_worst_case_and_checks(
    settings, model, test, clean, attacks, results, train_eps
):
    """Worst case over the sweep's attacks per budget, and the sanity checks.

    The checks of `keras_adv.sanity_checks` run first and are stored per
    trained model (a failed doubling check adds the doubled attack to the
    worst case); then the worst-case cells (attack `WORST_CASE`) join the
    table.
    """
    correct = {
        (c["attack"], c["attack_epsilon"]): _unpack(c["robust_examples"], len(test))
        for c in results["cells"]
        if c["train_epsilon"] == train_eps and c["attack"] != WORST_CASE
    }
    epsilons = sorted(settings.attack_epsilons)
    table = {name: [correct[(name, e)] for e in epsilons] for name in attacks}
    worst = worst_case(clean, table)
    checks = []
    if settings.checks:
        checks = sanity_checks.run_checks(
            test,
            model,
            clean,
            attacks,
            epsilons,
            table,
            worst,
            CHECK_TOLERANCE,
            settings.seed,
        )
    results["cells"] = [
        c
        for c in results["cells"]
        if not (c["train_epsilon"] == train_eps and c["attack"] == WORST_CASE)
    ]
    for eps, flags in zip(epsilons, worst, strict=True):
        results["cells"].append(
            {
                "train_epsilon": train_eps,
                "attack": WORST_CASE,
                "attack_epsilon": eps,
                "robust_accuracy": float(flags.mean()),
                "clean_accuracy": float(clean.mean()),
                "robust_examples": _pack(flags),
            }
        )
    results["checks"] = [
        c for c in results["checks"] if c["train_epsilon"] != train_eps
    ]
    results["checks"].append(
        {
            "train_epsilon": train_eps,
            "checks": [dataclasses.asdict(check) for check in checks],
        }
    )


def _model_path(out_dir, eps):
    return os.path.join(out_dir, "models", f"train_eps_{eps:g}.keras")


def _saved_model(out_dir, results, eps):
    """The path of the model trained at `eps` by an earlier run, or None."""
    path = _model_path(out_dir, eps)
    if f"{eps:g}" in results["training"] and os.path.exists(path):
        return path
    return None


def _trained_model(settings, eps, data, out_dir, results, verbose, callbacks=()):
    key = f"{eps:g}"
    saved = _saved_model(out_dir, results, eps)
    if saved is not None:
        return keras.saving.load_model(saved)
    path = _model_path(out_dir, eps)
    model, record = train_model(settings, eps, data, verbose, callbacks)
    results_store.save_model(model, path)
    results["training"][key] = {
        **record,
        "model": os.path.relpath(path, out_dir),
        "architecture": model.name.removeprefix("adversarial_"),
        # the layers' weights: the wrapper's own epsilon scale is not one
        "parameters": sum(layer.count_params() for layer in model.layers),
    }
    _write_json(os.path.join(out_dir, RESULTS), results)
    return model
