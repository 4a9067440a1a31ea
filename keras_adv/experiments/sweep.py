"""The attack strength vs defense effect grid, as units of work, resumable.

One unit per training budget: train the model (the reference CNN, a zoo
name, the user's `.keras` file or builder function: `model_source`) with
`AdversarialModel`; attack it with each attack at each budget and record
clean and robust accuracy, measured perturbation norms, prediction drift and
flip rate; then the worst case over the attacks (an example counts as robust
only if no attack broke it) and the sanity checks of
`keras_adv.sanity_checks`. Every finished step is written to the unit's own
file atomically and merged into `results.json` (`results_store`), so an
interrupted sweep rerun with the same settings on the same data (identified
by content) skips what is done, and units run anywhere: here one after
another, as a `Shard` of a job array, or as Ray tasks (`ray_executor`).
Rendering lives in `report.py`; the command line in `cli.py`.
"""

import dataclasses
import glob
import json
import os
import platform
import shutil
import time
from importlib import metadata

import keras
import numpy as np

from keras_adv import __version__
from keras_adv import argument_validation as validation
from keras_adv.attacks import names as attack_names
from keras_adv.attacks.names import WORST_CASE
from keras_adv.evaluation import sanity_checks
from keras_adv.evaluation.eta import Eta
from keras_adv.evaluation.probe import ProbeSet
from keras_adv.evaluation.probe import standard_metrics
from keras_adv.evaluation.robustness import worst_case
from keras_adv.evaluation.state import pack
from keras_adv.evaluation.state import unpack
from keras_adv.experiments import model_source
from keras_adv.experiments import recipe
from keras_adv.experiments import results_store
from keras_adv.experiments.data import fingerprint
from keras_adv.experiments.data import identity
from keras_adv.experiments.data import load
from keras_adv.experiments.progress import Progress
from keras_adv.experiments.progress import cell_line
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
    gradalign_lam: float | None = None  # objective gradalign only (0.2 when None)
    awp_gamma: float = 0.0  # adversarial weight perturbation (0: off)
    awp_warmup: int = 0  # epochs before it starts
    crop_padding: int = 0  # random crop after this much zero padding
    flip: bool = False  # random horizontal flip
    early_stopping_split: float = 0.0  # held out for robust early stopping
    precision: str = "float32"  # Keras dtype policy: or mixed_float16/bfloat16

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
        for name in self.attacks:
            attack_names.for_measuring(attack_names.get(name))
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


def _prepare_folder(out_dir, settings, data, overwrite):
    """Keeps the header of an earlier run of the same settings and data, or
    starts anew; `ResultsFolderError` where that would lose or mix results.
    Called under `results_store.locked(out_dir)`."""
    path = os.path.join(out_dir, RESULTS)
    wanted = dataclasses.asdict(settings)
    record = identity(settings.dataset, data, settings.seed)
    model = model_source.describe(settings.model)
    try:
        results = results_store.read(out_dir)
    except ResultsFolderError:
        if not overwrite:
            raise
        results = None  # damaged: --overwrite starts over, as the refusal offers
    if results is not None:
        before = results.get("data", {}).get("sha256")
        same_model = results.get("model", _DEFAULT_MODEL) == model
        if _same(_settings_of(results), wanted) and before == record["sha256"]:
            if same_model:
                _split_into_units(out_dir, results)
                return  # resume, --overwrite or not: nothing to replace
        if results_store.holds_work(results, out_dir) and not overwrite:
            raise ResultsFolderError(_mismatch(out_dir, settings, results, record))
    elif results_store.unit_files(out_dir) and not overwrite:
        raise ResultsFolderError(
            f"{os.path.join(out_dir, results_store.UNITS)} holds units of a sweep "
            f"whose {RESULTS} is gone; use another --name, or pass --overwrite "
            "to start over."
        )
    if overwrite or results is not None:  # the replaced sweep's files go too,
        _remove_units(out_dir)  # only those named as the sweep names them
    os.makedirs(os.path.join(out_dir, "models"), exist_ok=True)
    _write_json(
        path,
        {
            "settings": wanted,
            "data": record,
            "model": model,
            "attack_configs": _attack_configs(settings),
            "versions": _versions(),
            "training": {},
            "cells": [],
            "checks": [],
        },
    )


def _remove_units(out_dir):
    """Deletes the units' files and models, unless a process is computing one."""
    units = os.path.join(out_dir, results_store.UNITS)
    for lock in glob.glob(os.path.join(units, "train_eps_*.lock")):
        unit = os.path.basename(lock)[: -len(".lock")]
        owner = results_store.claimed_by(out_dir, unit)
        if owner is not None:
            raise results_store.busy(out_dir, owner)
    for pattern in ("models/train_eps_*.keras", "units/train_eps_*.json"):
        for path in glob.glob(os.path.join(out_dir, pattern)):
            os.remove(path)
    for path in glob.glob(os.path.join(out_dir, "models/train_eps_*.keras.backup")):
        shutil.rmtree(path, ignore_errors=True)  # another sweep's epochs


def _split_into_units(out_dir, results):
    """A folder made before units (everything in `results.json`) gets its
    units' files, so it resumes like any other."""
    if results_store.unit_files(out_dir) or not results_store.holds_work(results):
        return
    for eps in results["settings"]["train_epsilons"]:
        record = {
            "train_epsilon": eps,
            "cells": [c for c in results["cells"] if c["train_epsilon"] == eps],
        }
        if f"{eps:g}" in results["training"]:
            record["training"] = results["training"][f"{eps:g}"]
        for entry in results["checks"]:
            if entry["train_epsilon"] == eps:
                record["checks"] = entry
        if len(record) > 2 or record["cells"]:
            results_store.write_unit(out_dir, results_store.unit_name(eps), record)


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


def train_model(settings, eps, data, verbose=0, callbacks=(), backup_dir=None):
    """`settings.model` trained on `data` at budget `eps` (clean when 0),
    with the recipe of `settings` (`recipe`).

    Every budget starts from the same initial weights (`settings.seed`).
    Returns `(model, record)`: an `AdversarialModel` when `eps > 0`, and a
    dict with the training's `seconds`, `epochs` and, with robust early
    stopping, `early_stopping` (held-out robust accuracy of the last and the
    best epoch; the model holds the best epoch's weights). `callbacks` are
    added to `fit`'s (e.g. a `progress.Progress`).

    With `backup_dir`, Keras's `BackupAndRestore` saves the weights, the
    optimizer and the attack's random state there after every epoch (two
    copies, so a crash while saving leaves the one before), and a call
    that finds a backup resumes after its last epoch (`resumed_at_epoch`
    in the record; later epochs see another shuffle than an uninterrupted
    run). Not with robust early stopping, whose best weights live in
    memory: that training starts over. The caller removes the backup once
    the model is saved.
    """
    (x_train, y_train), (_, y_test) = data
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    (x_fit, y_fit), held_out = recipe.split_for_early_stopping(
        settings, x_train, y_train
    )
    steps_per_epoch = -(-len(x_fit) // settings.batch_size)
    with recipe.dtype_policy(settings):  # layers keep it; compile reads it
        model, from_logits = model_source.build(
            settings.model, x_train.shape[1:], num_classes, settings.seed, settings.init
        )
        if eps > 0:
            model = AdversarialModel(
                model=model,
                attack=recipe.training_attack(settings, eps),
                objective=recipe.objective(settings),
                awp_gamma=settings.awp_gamma,
                awp_warmup=settings.awp_warmup,
            )
        model.compile(
            recipe.optimizer(settings, steps_per_epoch),
            keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
            metrics=["accuracy"],
        )
    stopping = []
    if held_out is not None:
        stopping = recipe.early_stopping_callbacks(settings, eps, held_out, from_logits)
    callbacks = [*stopping, *callbacks]  # the monitor's logs first
    resumed_at = 0
    if backup_dir is not None and held_out is None:
        resumed_at = backup_epoch(backup_dir)
        backup = keras.callbacks.BackupAndRestore(
            backup_dir, double_checkpoint=True, delete_checkpoint=False
        )
        callbacks = [backup, *callbacks]  # restores before the others begin
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
        "epochs": history.epoch[-1] + 1 if history.epoch else resumed_at,
    }
    if resumed_at:
        record["resumed_at_epoch"] = resumed_at
    stopping = recipe.early_stopping_record(history.history)
    if stopping is not None:
        record["early_stopping"] = stopping
    return model, record


@dataclasses.dataclass(frozen=True)
class Shard:
    """One share of a sweep's units: those at positions `index`,
    `index + count`, `index + 2 count`, ... of the training budgets."""

    index: int = 0
    count: int = 1

    def __post_init__(self):
        for name, low in (("index", 0), ("count", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(
                    f"Argument `{name}` must be an integer >= {low}. "
                    f"Received: {name}={value!r}"
                )
        if self.index >= self.count:
            raise ValueError(
                f"A shard's index counts from 0 to count - 1. "
                f"Received: {self.index}/{self.count}"
            )

    @classmethod
    def parse(cls, text, environ=None):
        """`"I/N"`, or `"slurm"`: this task's share of a SLURM job array
        (`SLURM_ARRAY_TASK_ID` counted from `SLURM_ARRAY_TASK_MIN` out of
        `SLURM_ARRAY_TASK_COUNT`). `ValueError` saying what to write instead."""
        if text == "slurm":
            environ = os.environ if environ is None else environ
            names = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT")
            if any(name not in environ for name in names):
                raise ValueError(
                    "--shard slurm reads SLURM_ARRAY_TASK_ID and "
                    "SLURM_ARRAY_TASK_COUNT, which are not set: run it in a job "
                    "array (sbatch --array=0-N), or pass --shard I/N"
                )
            first = environ.get("SLURM_ARRAY_TASK_MIN", "0")
            text = f"{int(environ[names[0]]) - int(first)}/{int(environ[names[1]])}"
        index, _, count = str(text).partition("/")
        try:
            index, count = int(index), int(count)
        except ValueError:
            raise ValueError(
                f"--shard takes I/N (share I of N, counted from 0, e.g. 0/4) or "
                f"slurm. Received: {text!r}"
            ) from None
        return cls(index, count)

    def pick(self, items):
        """This share of `items`."""
        return list(items)[self.index :: self.count]


def run_sweep(
    settings,
    out_dir,
    overwrite=False,
    verbose=0,
    on_cell=None,
    progress=None,
    shard=None,
    executor=None,
):
    """Runs (or resumes) a sweep into `out_dir`; returns the results dict.

    The sweep is one unit of work per training budget (the trained model and
    its cells), each written to its own file as it goes, so several
    processes (`shard`s, Ray tasks, or two plain runs) can fill one folder:
    a unit another process is computing is left to it. `results.json`
    merges the units finished so far.

    Args:
        settings: a `SweepSettings`.
        out_dir: the run's folder: `results.json`, `units/` and `models/`.
        overwrite: replace a sweep with other settings in `out_dir`.
            Defaults to `False` (such a folder is refused).
        verbose: Keras's `fit` verbosity for training. Defaults to 0.
        on_cell: called with each newly finished cell (a dict), e.g. to
            print progress. Defaults to `None`.
        progress: called with one line per training epoch: which model of
            the sweep, the epoch, accuracies, time left (`progress.Progress`).
            Defaults to `None`.
        shard: a `Shard`: compute only its share of the units. Defaults to
            `None` (every unit).
        executor: `None` computes the units here, one after another; a
            `ray_executor.RayExecutor` runs them as Ray tasks.

    Returns:
        The merged results; `results["missing"]` names the units not finished
        (another shard's, or one another process is computing now).
    """
    data = load(settings.dataset, seed=settings.seed)  # checked before any write
    os.makedirs(out_dir, exist_ok=True)
    with results_store.locked(out_dir):
        _prepare_folder(out_dir, settings, data, overwrite)
        results_store.merge(out_dir)
    mine = (shard or Shard()).pick(settings.train_epsilons)
    todo = [eps for eps in mine if not results_store.finished(_unit(out_dir, eps))]
    if progress is not None:
        for eps in mine:
            if eps not in todo:
                progress(f"train eps {eps:g} | done in an earlier run, skipped")
    if executor is None:
        untrained = [eps for eps in todo if _saved_model(out_dir, eps) is None]
        for train_eps in todo:
            callbacks = []
            if progress is not None and train_eps in untrained:
                place = untrained.index(train_eps)
                label = f"model {place + 1}/{len(untrained)} (train eps {train_eps:g})"
                callbacks = [Progress(progress, label, len(untrained) - place - 1)]
            run_unit(
                settings, out_dir, train_eps, data, verbose, on_cell, callbacks,
                say=progress,
            )  # fmt: skip
    else:
        executor.run(settings, out_dir, todo, on_cell=on_cell, progress=progress)
    with results_store.locked(out_dir):
        return results_store.merge(out_dir)


def unit_status(settings, out_dir):
    """`(unit name, status)` per unit of the sweep in `out_dir`, in order:
    "done", "running (process P)", "trained, C of N cells", "to do"."""
    cells = len(settings.attacks) * len(settings.attack_epsilons)
    header = results_store.read(out_dir)
    if header is not None and not _same(
        _settings_of(header), dataclasses.asdict(settings)
    ):  # its units are another sweep's
        other = "to do (the folder holds a sweep with other settings)"
        return [(results_store.unit_name(e), other) for e in settings.train_epsilons]
    statuses = []
    for eps in settings.train_epsilons:
        name = results_store.unit_name(eps)
        owner = results_store.claimed_by(out_dir, name)
        record = _unit(out_dir, eps)
        if results_store.finished(record):
            status = "done"
        elif owner is not None:
            status = f"running (process {owner})"
        elif record is not None and "training" in record:
            attacked = [c for c in record["cells"] if c["attack"] != WORST_CASE]
            status = f"trained, {len(attacked)} of {cells} cells"
        else:
            status = "to do"
        statuses.append((name, status))
    return statuses


def _unit(out_dir, eps):
    return results_store.read_unit(out_dir, results_store.unit_name(eps))


def run_unit(
    settings,
    out_dir,
    train_eps,
    data,
    verbose=0,
    on_cell=None,
    callbacks=(),
    say=None,
):
    """Computes (or finishes) the unit of training budget `train_eps`.

    Claims the unit first: if another process holds it, returns that
    process's id and does nothing; else computes what the unit's file lacks,
    writing it (and merging `results.json`) after every step, and returns
    `None`. `say`, if given, gets a line per finished cell (its place and
    the time left), and says what an earlier run had done.
    """
    unit = results_store.unit_name(train_eps)
    with results_store.claimed(out_dir, unit) as owner:
        if owner is not None:
            return owner
        record = results_store.read_unit(out_dir, unit)
        if results_store.finished(record):
            return None  # finished by another process since it was listed
        record = record or {"train_epsilon": train_eps, "cells": []}
        _fill_unit(settings, out_dir, data, record, verbose, on_cell, callbacks, say)
    return None


def run_unit_in_own_process(settings, out_dir, train_eps, progress=None, label=None):
    """`run_unit` where the folder was prepared by another process (a Ray
    task): loads the data and checks they are the folder's (by content), so a
    machine that sees other data at the same path refuses instead of mixing.
    Returns `(owner, cells)`: as `run_unit`, and the cells it computed."""
    data = load(settings.dataset, seed=settings.seed)
    header = results_store.read(out_dir)
    expected = (header or {}).get("data", {}).get("sha256")
    if fingerprint(data) != expected:
        raise ResultsFolderError(
            f"the data of --dataset {settings.dataset} on {platform.node()} differ "
            f"from those {os.path.join(out_dir, RESULTS)} was made with: every "
            "machine of the sweep must see the same data."
        )
    cells = []
    callbacks = [] if progress is None else [Progress(progress, label, 0)]
    owner = run_unit(settings, out_dir, train_eps, data, 0, cells.append, callbacks)
    return owner, cells


def _save_unit(out_dir, record):
    """Writes the unit's file, then merges it into `results.json`."""
    unit = results_store.unit_name(record["train_epsilon"])
    results_store.write_unit(out_dir, unit, record)
    with results_store.locked(out_dir):
        results_store.merge(out_dir)


def _fill_unit(
    settings, out_dir, data, record, verbose, on_cell, callbacks=(), say=None
):
    """Computes what the unit's `record` lacks, writing it after every step."""
    train_eps = record["train_epsilon"]
    test = ProbeSet(data[1], max_examples=settings.max_test_examples)
    # Cells of an older keras-adv lack per-example results: they are redone;
    # the worst case is recomputed from the attacks' cells at the end.
    record["cells"] = [
        c
        for c in record["cells"]
        if "robust_examples" in c and c["attack"] != WORST_CASE
    ]
    done = {(c["attack"], c["attack_epsilon"]) for c in record["cells"]}
    todo = [
        (name, eps)
        for name in settings.attacks
        for eps in settings.attack_epsilons
        if (name, eps) not in done
    ]
    where = f"train eps {train_eps:g}"
    say = say or (lambda line: None)
    model = _trained_model(
        settings, train_eps, data, out_dir, record, verbose, callbacks, say
    )
    cells = len(settings.attacks) * len(settings.attack_epsilons)
    if done:
        say(f"{where} | {len(done)} of {cells} cells done in an earlier run, skipped")
    eta = Eta(cells, done=len(done))
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
            "robust_examples": pack(outcome.correct),
        }
        record["cells"].append(cell)
        _save_unit(out_dir, record)
        say(f"{cell_line(cell)} | cell {eta.step()}")
        if on_cell is not None:
            on_cell(cell)
    attacks = {name: attack for name, (attack, _) in tools.items()}
    for name, attack in attacks.items():
        attack.seed_generator.state.assign(starts[name])
    if clean is None:  # resumed after every cell was done
        clean = test.clean_correct(model)
    if settings.checks:
        say(f"{where} | sanity checks (about two more epsilons of attacks)")
    _add_worst_case_and_checks(settings, model, test, clean, attacks, record)
    _save_unit(out_dir, record)


def _rng_state(attack):
    return keras.ops.convert_to_numpy(attack.seed_generator.state)


def _add_worst_case_and_checks(settings, model, test, clean, attacks, record):
    """Worst case over the sweep's attacks per budget, and the sanity checks,
    added to the unit's `record`.

    The checks of `keras_adv.sanity_checks` run first and are stored with
    the unit (a failed doubling check adds the doubled attack to the worst
    case); then the worst-case cells (attack `WORST_CASE`) join the unit's
    cells. A unit with `checks` is finished.
    """
    train_eps = record["train_epsilon"]
    correct = {
        (c["attack"], c["attack_epsilon"]): unpack(c["robust_examples"], len(test))
        for c in record["cells"]
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
    for eps, flags in zip(epsilons, worst, strict=True):
        record["cells"].append(
            {
                "train_epsilon": train_eps,
                "attack": WORST_CASE,
                "attack_epsilon": eps,
                "robust_accuracy": float(flags.mean()),
                "clean_accuracy": float(clean.mean()),
                "robust_examples": pack(flags),
            }
        )
    record["checks"] = {
        "train_epsilon": train_eps,
        "checks": [dataclasses.asdict(check) for check in checks],
    }


def _model_path(out_dir, eps):
    return os.path.join(out_dir, "models", f"{results_store.unit_name(eps)}.keras")


def backup_epoch(backup_dir):
    """How many epochs the `BackupAndRestore` backup in `backup_dir` holds (0: none)."""
    for name in ("training_metadata.json", "training_metadata.json.bkp"):
        try:
            with open(os.path.join(backup_dir, name)) as file:
                return int(json.load(file)["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return 0


def _saved_model(out_dir, eps, record=None):
    """The path of the model trained at `eps` by an earlier run, or None."""
    record = _unit(out_dir, eps) if record is None else record
    path = _model_path(out_dir, eps)
    if record is not None and "training" in record and os.path.exists(path):
        return path
    return None


def _trained_model(settings, eps, data, out_dir, record, verbose, callbacks, say):
    saved = _saved_model(out_dir, eps, record)
    if saved is not None:
        say(f"train eps {eps:g} | model trained in an earlier run, loaded from {saved}")
        return keras.saving.load_model(saved)
    path = _model_path(out_dir, eps)
    backup = f"{path}.backup"
    done = backup_epoch(backup)
    if done:
        say(f"train eps {eps:g} | resuming its training after epoch {done} ({backup})")
    model, training = train_model(settings, eps, data, verbose, callbacks, backup)
    # The folder's data record (identity of `data`, hashed once per sweep).
    trained_on = results_store.read(out_dir)["data"]
    results_store.save_model(model, path, trained_on=trained_on)
    shutil.rmtree(backup, ignore_errors=True)  # saved: the epochs are kept
    record["training"] = {
        **training,
        "model": os.path.relpath(path, out_dir),
        "architecture": model.name.removeprefix("adversarial_"),
        # the layers' weights: the wrapper's own epsilon scale is not one
        "parameters": sum(layer.count_params() for layer in model.layers),
        "versions": _versions(),
        "host": platform.node(),
    }
    _save_unit(out_dir, record)
    return model
