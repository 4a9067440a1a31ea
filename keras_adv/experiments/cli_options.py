"""The options of `keras-adv`: one declared type per config key and flag.

A value from a TOML config file or the command line is checked against its
key's type before anything runs, and refused naming the key (or flag), the
file, the expected type and the value: `overwrite = "false"` is a string,
not a boolean, and must never delete a finished sweep.
"""

import math
import os


class UsageError(Exception):
    """Bad input from the command line or a config file: exit status 2."""


def _boolean(value):
    if not isinstance(value, bool):
        raise TypeError("true or false (a TOML boolean, unquoted)")
    return value


def _integer(low):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise TypeError(f"an integer >= {low}")
        return value

    return check


def _budget(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("a finite number >= 0")
    if not math.isfinite(value) or value < 0:
        raise TypeError("a finite number >= 0")
    return float(value)


def _real(low, high=math.inf, above=False, below=False):
    """A check for finite numbers in the range; `above`/`below` exclude the ends."""
    left, right = "(" if above else "[", ")" if below else "]"
    text = f"a number in {left}{low:g}, {high:g}{right}"

    def check(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(text)
        if not math.isfinite(value) or not (
            (value > low if above else value >= low)
            and (value < high if below else value <= high)
        ):
            raise TypeError(text)
        return float(value)

    return check


def _text(value):
    if not isinstance(value, str) or not value:
        raise TypeError("a non-empty string")
    return value


def _list_of(item, items, example, detail=False):
    """A check for non-empty lists of `item`; `detail` adds the item's own
    message (the list of attack names) to a refusal."""

    def check(value):
        expected = f"a non-empty list of {items}, such as {example}"
        if not isinstance(value, (list, tuple)) or not value:
            raise TypeError(expected)
        try:
            return [item(element) for element in value]
        except TypeError as error:
            raise TypeError(
                f"{expected}; each {error}" if detail else expected
            ) from None

    return check


def _choice(*choices):
    def check(value):
        if value not in choices:
            raise TypeError(f"one of {', '.join(map(repr, choices))}")
        return value

    return check


def _folder_name(value):
    _text(value)
    parts = value.replace("\\", "/").split("/")
    if os.path.isabs(value) or len(parts) > 1 or value in (".", ".."):
        raise TypeError("a folder name inside --out (no '/', '..' or absolute path)")
    return value


def _attack_name(value):
    _text(value)
    from keras_adv.attacks import names

    try:
        return names.canonical(value)  # one spelling per attack
    except ValueError:
        raise TypeError(f"an attack name: {names.GRAMMAR}") from None


def _shard(value):
    _text(value)
    index, slash, count = value.partition("/")
    if value != "slurm" and not (slash and index.isdigit() and count.isdigit()):
        raise TypeError("I/N (share I of N, counted from 0, e.g. 0/4) or slurm")
    return value


_BUDGETS = _list_of(_budget, "finite numbers >= 0", "[0, 0.1]")
_ATTACKS = _list_of(_attack_name, "attack names", '["fgsm", "pgd20"]', detail=True)
# key -> (type check, the flag that sets it on the command line or None)
OPTIONS = {
    "dataset": (_text, "--dataset"),
    "train_eps": (_BUDGETS, "--train-eps"),
    "attack_eps": (_BUDGETS, "--attack-eps"),
    "attacks": (_ATTACKS, "--attacks"),
    "train_attack": (_attack_name, "--train-attack"),
    "objective": (
        _choice("mixed", "madry", "trades", "mart", "regularized", "gradalign"),
        "--objective",
    ),
    "epochs": (_integer(1), "--epochs"),
    "batch_size": (_integer(1), "--batch-size"),
    "max_test_examples": (_integer(1), "--max-test-examples"),
    "seed": (_integer(0), "--seed"),
    "checks": (_boolean, None),
    "no_checks": (_boolean, "--no-checks"),
    "name": (_folder_name, "--name"),
    "out": (_text, "--out"),
    "overwrite": (_boolean, "--overwrite"),
    "quiet": (_boolean, "--quiet"),
    "quick": (_boolean, "--quick"),
    "epsilon": (_budget, "--epsilon"),
    "attack": (_attack_name, "--attack"),
    "epsilons": (_BUDGETS, "--epsilons"),
    "model": (_text, "--model"),
    "init": (_choice("fresh", "weights"), "--init"),
    # The training recipe (keras_adv.experiments.recipe).
    "optimizer": (_choice("adam", "sgd"), "--optimizer"),
    "learning_rate": (_real(0, above=True), "--learning-rate"),
    "momentum": (_real(0, 1, below=True), "--momentum"),
    "nesterov": (_boolean, "--nesterov"),
    "weight_decay": (_real(0), "--weight-decay"),
    "lr_schedule": (
        _choice("constant", "piecewise", "cosine", "cyclic"),
        "--lr-schedule",
    ),
    "lr_milestones": (
        _list_of(
            _real(0, 1, above=True, below=True), "shares in (0, 1)", "[0.5, 0.75]"
        ),
        "--lr-milestones",
    ),
    "train_relative_step_size": (_real(0, above=True), "--train-relative-step-size"),
    "train_random_start": (_boolean, "--train-random-start"),
    "mixed_alpha": (_real(0, 1), "--mixed-alpha"),
    "trades_beta": (_real(0, above=True), "--trades-beta"),
    "gradalign_lam": (_real(0), "--gradalign-lam"),
    "awp_gamma": (_real(0, 1, below=True), "--awp-gamma"),
    "awp_warmup": (_integer(0), "--awp-warmup"),
    "crop_padding": (_integer(0), "--crop-padding"),
    "flip": (_boolean, "--flip"),
    "early_stopping_split": (_real(0, 0.5), "--early-stopping-split"),
    "precision": (
        _choice("float32", "mixed_float16", "mixed_bfloat16"),
        "--precision",
    ),
    # Where a sweep's units run (keras_adv.experiments.sweep, ray_executor).
    "shard": (_shard, "--shard"),
    "executor": (_choice("serial", "ray"), "--executor"),
    "address": (_text, "--address"),
    "cpus_per_model": (_real(0, above=True), "--cpus-per-model"),
    "gpus_per_model": (_real(0), "--gpus-per-model"),
}


def check(key, value, config_path=None):
    """`value` for option `key`, checked; `UsageError` naming the key otherwise.

    Args:
        key: the option's key (config spelling, e.g. `train_eps`).
        value: what the config file or the flag gave.
        config_path: the config file it came from; `None` for a flag.
    """
    checker, flag = OPTIONS[key]
    try:
        return checker(value)
    except TypeError as error:
        where = f"{flag}" if config_path is None else f"{key} in {config_path}"
        shown = f"{value!r} (a {type(value).__name__})"
        raise UsageError(f"{where} must be {error}. Received: {shown}") from None


# The training recipe's keys: each a SweepSettings field of the same name.
RECIPE_KEYS = (
    "optimizer",
    "learning_rate",
    "momentum",
    "nesterov",
    "weight_decay",
    "lr_schedule",
    "lr_milestones",
    "train_relative_step_size",
    "train_random_start",
    "mixed_alpha",
    "trades_beta",
    "gradalign_lam",
    "awp_gamma",
    "awp_warmup",
    "crop_padding",
    "flip",
    "early_stopping_split",
    "precision",
)
# Config-file keys (and flags) -> SweepSettings fields.
SWEEP_KEYS = {
    "dataset": "dataset",
    "train_eps": "train_epsilons",
    "attack_eps": "attack_epsilons",
    "attacks": "attacks",
    "train_attack": "train_attack",
    "objective": "objective",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "max_test_examples": "max_test_examples",
    "seed": "seed",
    "checks": "checks",
    "model": "model",
    "init": "init",
    **{key: key for key in RECIPE_KEYS},
}


# Keys that say where a sweep's units run, not what they compute: a folder's
# units may be made by any mix of them.
SCALE_KEYS = ("shard", "executor", "address", "cpus_per_model", "gpus_per_model")
_RAY_ONLY = ("address", "cpus_per_model", "gpus_per_model")


def executor(options):
    """The sweep's executor from the merged options: `None` (serial, here)
    or a `RayExecutor`; `UsageError` for Ray's options without Ray."""
    if options.get("executor", "serial") == "serial":
        given = [k for k in _RAY_ONLY if k in options]
        if given:
            flags = ", ".join(OPTIONS[k][1] for k in given)
            raise UsageError(f"{flags} apply to --executor ray only; add it")
        return None
    from keras_adv.experiments.ray_executor import RayExecutor

    try:
        return RayExecutor(
            options.get("address"),
            options.get("cpus_per_model", 1),
            options.get("gpus_per_model", 0),
        )
    except (ImportError, ConnectionError) as error:  # no Ray; no cluster there
        raise UsageError(str(error)) from None


def shard(options):
    """The `Shard` of the merged options (every unit when none given)."""
    from keras_adv.experiments.sweep import Shard

    try:
        return Shard.parse(options.get("shard", "0/1"))
    except ValueError as error:
        raise UsageError(str(error)) from None


def sweep_settings(options, **extra):
    """`SweepSettings` from the merged options; `extra` fields set as given."""
    from keras_adv.experiments.sweep import SweepSettings

    fields = {SWEEP_KEYS[k]: v for k, v in options.items() if k in SWEEP_KEYS}
    for key in ("train_epsilons", "attack_epsilons", "attacks", "lr_milestones"):
        if key in fields:
            fields[key] = tuple(fields[key])
    try:
        return SweepSettings(**{**fields, **extra})
    except ValueError as error:  # the options were checked: a last safeguard
        raise UsageError(str(error)) from None
