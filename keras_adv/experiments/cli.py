"""The `keras-adv` command's work: checks the parsed options, calls the library.

Subcommands: `sweep` (the main job), `report` (merge a sweep's finished
units), `train`, `evaluate`, `reproduce` (a paper's recipe). Bad input (a
flag, a config value, a data or model file, a results folder) ends with one
line on stderr and exit status 2; a bug in keras-adv keeps its traceback.
"""

import os
import sys

from keras_adv.experiments import cli_options
from keras_adv.experiments.cli_options import SCALE_KEYS
from keras_adv.experiments.cli_options import SWEEP_KEYS
from keras_adv.experiments.cli_options import UsageError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

QUICK = {  # --quick: a sub-minute smoke run of the whole pipeline
    "train_eps": [0.0, 0.1],
    "attack_eps": [0.0, 0.05, 0.1, 0.2],
    "attacks": ["fgsm", "pgd10"],
    "epochs": 3,
    "max_test_examples": 200,
}
# The attack `train` reports robust accuracy under, at the training budget.
TRAIN_REPORT_ATTACK = "pgd20"
OTHER_KEYS = {"name", "out", "overwrite", "quiet", "quick", "no_checks"}


def _read_config(path, allowed):
    try:
        with open(path, "rb") as handle:
            config = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"cannot read config file {path}: {error}") from None
    config = {key.replace("-", "_"): value for key, value in config.items()}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise UsageError(
            f"unknown key(s) {unknown} in {path}; known keys: {sorted(allowed)}"
        )
    return config


def _options(args, allowed):
    """Defaults < --quick < config file < flags given; every value type-checked.

    `quick = true` in the config file counts like `--quick`; `no_checks`
    (flag or key) turns `checks` off.
    """
    config = _read_config(args.config, allowed) if args.config else {}
    config = {key: cli_options.check(key, v, args.config) for key, v in config.items()}
    quick = getattr(args, "quick", False) or config.get("quick", False)
    options = dict(QUICK) if quick else {}
    options.update(config)
    for key in allowed:
        value = getattr(args, key, None)
        # Absent flags are None (on/off flags too): False, 0 and 0.0 are values.
        if value is not None:
            options[key] = cli_options.check(key, value)
    if options.pop("no_checks", False):
        options["checks"] = False
    return options


def _say(options):
    return (lambda line: None) if options.get("quiet") else print


def _sweep(args):
    from keras_adv.experiments.sweep import run_sweep
    from keras_adv.experiments.sweep import unit_status

    options = _options(args, set(SWEEP_KEYS) | OTHER_KEYS | set(SCALE_KEYS))
    say = _say(options)
    settings = cli_options.sweep_settings(options)
    shard = cli_options.shard(options)
    out_dir = os.path.join(options.get("out", "runs"), options.get("name", "default"))
    if args.list:
        statuses = unit_status(settings, out_dir)
        mine = set(shard.pick(range(len(statuses))))
        for place, (unit, status) in enumerate(statuses):
            if place in mine:
                print(f"unit {place + 1}/{len(statuses)} | {unit} | {status}")
        return
    executor = cli_options.executor(options)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot write to {out_dir}: {error.strerror}") from None

    run_sweep(
        settings,
        out_dir,
        overwrite=options.get("overwrite", False),
        progress=None if options.get("quiet") else say,
        shard=shard,
        executor=executor,
    )
    _write_report(out_dir, say)


def _report(args):
    say = (lambda line: None) if args.quiet else print
    if not os.path.isfile(os.path.join(args.run_dir, "results.json")):
        raise UsageError(
            f"{args.run_dir} holds no keras-adv sweep (no results.json); pass the "
            "folder a sweep wrote, e.g. runs/default"
        )
    _write_report(args.run_dir, say)


def _write_report(out_dir, say):
    """Merges the folder's units and writes the report; says what is missing."""
    from keras_adv.experiments import results_store
    from keras_adv.experiments.report import write_report

    with results_store.locked(out_dir):
        results = results_store.merge(out_dir)
        write_report(results, out_dir)
    for entry in results["checks"]:
        for check in entry["checks"]:
            if not check["passed"]:
                say(
                    f"train eps {entry['train_epsilon']:g} | check FAILED "
                    f"{check['name']}: {check['message']}"
                )
    if results["missing"]:
        say(
            f"missing: {len(results['missing'])} of "
            f"{len(results['settings']['train_epsilons'])} units not finished "
            f"({', '.join(results['missing'])}); when their shards or runs "
            f"finish, `keras-adv report {out_dir}` merges them"
        )
    say(f"report: {os.path.join(out_dir, 'report.md')}")


def _train(args):
    from keras_adv.evaluation.robustness import evaluate_robustness
    from keras_adv.experiments.data import identity
    from keras_adv.experiments.data import load
    from keras_adv.experiments.progress import Progress
    from keras_adv.experiments.results_store import save_model
    from keras_adv.experiments.sweep import train_model

    options = _options(args, set(SWEEP_KEYS) | OTHER_KEYS | {"epsilon", "attack"})
    say = _say(options)
    folder = os.path.dirname(args.output) or "."
    if not args.output.endswith(".keras"):
        raise UsageError(f"--output must end in .keras; got {args.output}")
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise UsageError(f"--output {args.output}: {folder} is not a writable folder")
    settings = cli_options.sweep_settings(
        options, train_attack=options.get("attack", "pgd7")
    )
    epsilon = options.get("epsilon", 0.1)
    data = load(settings.dataset, seed=settings.seed)
    quiet = options.get("quiet")
    progress = [] if quiet else [Progress(say, f"model (train eps {epsilon:g})")]
    model, record = train_model(settings, epsilon, data, 0, progress)
    seconds = record["seconds"]
    save_model(
        model, args.output, trained_on=identity(settings.dataset, data, settings.seed)
    )
    accuracy = model.evaluate(*data[1], verbose=0, return_dict=True)
    say(
        f"saved {args.output} ({seconds:.0f} s); test accuracy "
        f"{accuracy.get('accuracy', float('nan')):.3f}"
    )
    if epsilon == 0:
        say(
            "trained clean: `keras-adv evaluate "
            f"{args.output} --epsilons 0 0.05 0.1` measures its robustness"
        )
        return
    result = evaluate_robustness(
        model,
        data[1],
        epsilons=[epsilon],
        attacks=[TRAIN_REPORT_ATTACK],
        checks=False,
        max_examples=settings.max_test_examples,
        seed=settings.seed,
    )
    say(
        f"robust accuracy under {TRAIN_REPORT_ATTACK} at eps {epsilon:g}: "
        f"{result.worst_case[0]:.3f} (clean {result.clean_accuracy:.3f}, on "
        f"{result.num_examples} test examples); `keras-adv evaluate "
        f"{args.output} --attacks autoattack` for the worst case"
    )


def _reproduce(args):
    from keras_adv.experiments import reproduce

    if args.list:
        for key in reproduce.names():
            print(f"{key}: {reproduce.load(key).name}")
        return
    if not args.recipe:
        raise UsageError("name a recipe (keras-adv reproduce --list shows them)")
    recipe = reproduce.load(args.recipe)
    overrides = {
        key: cli_options.check(key, getattr(args, key))
        for key in ("epochs", "max_test_examples")
        if getattr(args, key) is not None
    }
    name = cli_options.check("name", args.name) if args.name else recipe.key
    out_dir = os.path.join(args.out or "runs", name)
    say = (lambda line: None) if args.quiet else print
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot write to {out_dir}: {error.strerror}") from None
    _, text = reproduce.run(
        recipe,
        out_dir,
        overrides,
        overwrite=bool(args.overwrite),
        progress=None if args.quiet else say,
    )
    say(text)
    say(f"report: {os.path.join(out_dir, reproduce.REPORT)}")


def _load_model(path):
    """The `.keras` model at `path`, or one line saying why it is not one."""
    import zipfile

    import keras

    if not path.endswith(".keras") or not os.path.isfile(path):
        raise UsageError(f"{path} is not a .keras model file")
    if not zipfile.is_zipfile(path):
        raise UsageError(
            f"{path} is damaged: not a zip archive, as every .keras file is "
            "(was it fully written?). Save or copy the model again."
        )
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # a damaged or foreign archive, missing objects
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise UsageError(
            f"cannot load {path}: {type(error).__name__}: {first}"
        ) from None


def _evaluate(args):
    import warnings

    from keras_adv.attacks import names as attack_names
    from keras_adv.evaluation.robustness import RobustnessWarning
    from keras_adv.experiments import results_store
    from keras_adv.experiments.data import fingerprint
    from keras_adv.experiments.data import load

    options = _options(args, {"dataset", "seed", "max_test_examples", "quiet"})
    say = _say(options)
    seed = options.get("seed", 0)
    epsilons = cli_options.check("epsilons", args.epsilons)
    if args.attacks in (["autoattack"], ["autoattack-rand"]):
        attacks = args.attacks[0]  # AutoAttack's cascade, standard or rand
    else:
        # One spelling each (`PGD-20` and `pgd20` are one row); built with
        # `seed` by evaluate_robustness.
        attacks = list(dict.fromkeys(cli_options.check("attacks", args.attacks)))
    model = _load_model(args.model)
    record = results_store.trained_on(args.model)
    dataset = options.get("dataset") or (record or {}).get("dataset", "digits")
    data_seed = record.get("seed", seed) if record else seed
    data = load(dataset, seed=data_seed)
    if record is not None and fingerprint(data) != record.get("sha256"):
        raise UsageError(_other_data(args.model, record, dataset))
    test = data[1]
    _check_fits(model, test, args.model, dataset)
    with warnings.catch_warnings():  # the checks are printed below instead
        warnings.simplefilter("ignore", RobustnessWarning)
        result = _evaluate_robustness(
            model,
            test,
            epsilons=epsilons,
            attacks=attacks,
            checks=not args.no_checks,
            max_examples=options.get("max_test_examples", 1000),
            seed=seed,
            verbose=0 if options.get("quiet") else 1,
            state_path=args.state,
        )
    say("attack | " + " | ".join(f"eps {eps:g}" for eps in result.epsilons))
    rows = {**result.robust_accuracy, attack_names.WORST_CASE: result.worst_case}
    for name, row in rows.items():
        say(f"{name} | " + " | ".join(f"{value:.3f}" for value in row))
    for check in result.checks:
        status = "ok" if check.passed else "FAILED"
        say(f"check {check.name}: {status}: {check.message}")


def _evaluate_robustness(*args, **kwargs):
    """`evaluate_robustness`; a --state file it cannot resume is bad input."""
    from keras_adv.evaluation.robustness import evaluate_robustness
    from keras_adv.evaluation.state import StateFileError

    try:
        return evaluate_robustness(*args, **kwargs)
    except StateFileError as error:
        message = str(error).replace("Argument `state_path`", "--state")
        raise UsageError(message) from None


def _other_data(path, record, dataset):
    """One line: the model was trained on other data than `--dataset` gives."""
    from keras_adv.experiments.data import dataset_key

    trained = record.get("dataset")
    if dataset_key(dataset) == trained:
        return (
            f"{path} was trained on --dataset {trained} (sha256 "
            f"{record.get('sha256', '?')[:12]}...), and its data now differ "
            "(changed files, or another version): evaluate on the data it was "
            "trained on, or retrain it"
        )
    return (
        f"{path} was trained on --dataset {trained}, not {dataset}: pass "
        f"--dataset {trained} (or leave --dataset out: the model knows its data)"
    )


def _check_fits(model, test, path, dataset):
    """Refuses a model whose input shape or class count does not fit the data."""
    inputs = getattr(model, "inputs", None) or []
    outputs = getattr(model, "outputs", None) or []
    x, y = test
    if len(inputs) == 1 and tuple(inputs[0].shape[1:]) != x.shape[1:]:
        raise UsageError(
            f"{path} takes inputs of shape {tuple(inputs[0].shape[1:])}, but "
            f"--dataset {dataset} has {x.shape[1:]}: pass the --dataset it was "
            "trained on."
        )
    if len(outputs) == 1 and outputs[0].shape[-1] <= int(y.max()):
        raise UsageError(
            f"{path} has {outputs[0].shape[-1]} outputs, but --dataset {dataset} "
            f"has labels up to {int(y.max())}: pass the --dataset it was trained on."
        )


# What an interruption leaves behind, said plainly per command.
INTERRUPTED = {
    "sweep": "finished cells are saved; rerun the same command to resume",
    "train": "no model was saved; rerun the command to train again",
    "evaluate": "nothing was saved (unless --state); rerun the command",
    "reproduce": "finished cells are saved; rerun the same command to resume",
    "report": "the report was not rewritten; rerun the command",
}


def run(args):
    """Runs the parsed command (`keras_adv_cli.main` parses); returns the exit code.

    0 on success; 2 for bad input (one line on stderr); 1 when the system
    refused (a full disk, a permission), one line too; 130 on Ctrl-C. A bug
    in keras-adv raises, with its traceback.
    """
    from keras_adv.experiments.data import DataError
    from keras_adv.experiments.model_source import ModelSourceError
    from keras_adv.experiments.results_store import ResultsFolderError

    commands = {
        "sweep": _sweep,
        "train": _train,
        "evaluate": _evaluate,
        "reproduce": _reproduce,
        "report": _report,
    }
    try:
        commands[args.command](args)
    except (UsageError, DataError, ResultsFolderError, ModelSourceError) as error:
        print(f"keras-adv {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the system's refusal, not a bug
        kept = (
            f"; {INTERRUPTED['sweep']}"
            if args.command in ("sweep", "reproduce")
            else ""
        )
        print(f"keras-adv {args.command}: error: {error}{kept}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"keras-adv {args.command}: interrupted; {INTERRUPTED[args.command]}",
            file=sys.stderr,
        )
        return 130
    return 0
