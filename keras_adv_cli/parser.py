"""The `keras-adv` command line: every subcommand, flag and help text.

Plain argparse with nothing but the standard library imported, so that
`--help`, `--version` and argument errors answer before any deep learning
framework is loaded. Values are type-checked afterwards, with the config
file's, by `keras_adv.experiments.cli_options`.
"""

import argparse
import ast
import importlib.util
import pathlib


def version():
    """`keras_adv.__version__`, read from its source without importing it.

    Importing `keras_adv` imports Keras and its backend; the version is one
    assignment in `keras_adv/__init__.py`, read as setuptools reads it.
    """
    spec = importlib.util.find_spec("keras_adv")
    tree = ast.parse(pathlib.Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(target, "id", None) == "__version__" for target in node.targets
        ):
            return ast.literal_eval(node.value)
    raise RuntimeError(f"no __version__ in {spec.origin}")


def _settings_arguments(parser):
    parser.add_argument("--config", help="a TOML file whose keys mirror these flags")
    parser.add_argument(
        "--dataset",
        help=(
            "digits (default), fashion_mnist, mnist, cifar10, a .npz path, or a "
            "folder of images with one sub-folder per class"
        ),
    )
    parser.add_argument(
        "--objective",
        choices=["mixed", "madry", "trades", "mart", "regularized", "gradalign"],
    )
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--max-test-examples", type=int)
    parser.add_argument("--seed", type=int)
    _output_flags(parser)


def _output_flags(parser):
    """`--quiet` and `--verbose`, on every command."""
    _flag(parser, "--quiet", "print nothing but errors")
    _flag(
        parser,
        "--verbose",
        "show the framework's own log lines (TensorFlow's C++ and absl lines "
        "are hidden by default)",
    )


def _flag(parser, name, help):
    """An on/off flag; absent is `None`, so a config file's value stands."""
    parser.add_argument(name, action="store_true", default=None, help=help)


def _recipe_arguments(parser):
    recipe = parser.add_argument_group(
        "training recipe", "defaults: Adam at 1e-3, constant, no augmentation"
    )
    recipe.add_argument("--optimizer", choices=["adam", "sgd"])
    recipe.add_argument("--learning-rate", type=float, metavar="LR")
    recipe.add_argument("--momentum", type=float, help="sgd only (default 0.9)")
    _flag(recipe, "--nesterov", "sgd only: Nesterov momentum")
    recipe.add_argument(
        "--weight-decay", type=float, help="decoupled, per step lr * decay (default 0)"
    )
    recipe.add_argument(
        "--lr-schedule",
        choices=["constant", "piecewise", "cosine", "cyclic"],
        help="piecewise: /10 at each milestone; cyclic: 0 -> LR at 2/5 of the "
        "epochs -> 0 (Wong et al. 2020)",
    )
    recipe.add_argument(
        "--lr-milestones",
        type=float,
        nargs="+",
        metavar="SHARE",
        help="piecewise only: shares of training (default 0.5 0.75)",
    )
    recipe.add_argument(
        "--train-relative-step-size",
        type=float,
        metavar="R",
        help="the training attack's step size as a multiple of its epsilon "
        "(e.g. 1.25 for Fast-AT's FGSM; default the attack's own)",
    )
    recipe.add_argument(
        "--train-random-start",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="start the training attack in a random point of the ball "
        "(default the attack's own: yes for pgd, no for fgsm)",
    )
    recipe.add_argument("--mixed-alpha", type=float, help="objective mixed (0.5)")
    recipe.add_argument("--trades-beta", type=float, help="objective trades (6)")
    recipe.add_argument("--gradalign-lam", type=float, help="objective gradalign (0.2)")
    recipe.add_argument(
        "--awp-gamma",
        type=float,
        metavar="GAMMA",
        help="adversarial weight perturbation, relative to each layer's weight "
        "norm (Wu et al. 2020; e.g. 0.005; default 0: off)",
    )
    recipe.add_argument(
        "--awp-warmup",
        type=int,
        metavar="EPOCHS",
        help="epochs before the weight perturbation starts (default 0)",
    )
    recipe.add_argument(
        "--crop-padding",
        type=int,
        metavar="PIXELS",
        help="random crop after zero padding by PIXELS (images; e.g. 4)",
    )
    _flag(recipe, "--flip", "random horizontal flip (images)")
    recipe.add_argument(
        "--early-stopping-split",
        type=float,
        metavar="SHARE",
        help="hold out SHARE of the training data and keep the epoch with the "
        "best robust accuracy on it (Rice et al. 2020; default 0: off)",
    )
    recipe.add_argument(
        "--precision",
        choices=["float32", "mixed_float16", "mixed_bfloat16"],
        help="Keras dtype policy to train in (default float32; mixed_bfloat16 "
        "on CPUs and TPUs, mixed_float16 on GPUs)",
    )


def _model_arguments(parser):
    parser.add_argument(
        "--model",
        help="small_cnn (default), a .keras file (its architecture), or "
        "module:function / file.py:function returning a keras.Model given "
        "(input_shape, num_classes)",
    )
    parser.add_argument(
        "--init",
        choices=["fresh", "weights"],
        help="fresh initial weights per budget (default), or a .keras file's own",
    )


def _scale_arguments(parser):
    scale = parser.add_argument_group(
        "scaling out",
        "one unit of work per training epsilon (the trained model and its "
        "cells), each with its own result file; `keras-adv report RUN_DIR` "
        "merges them",
    )
    _flag(scale, "--list", "print the sweep's units and their state, then exit")
    scale.add_argument(
        "--shard",
        metavar="I/N",
        help="run share I of N of the units (0/4 .. 3/4), or `slurm`: this "
        "task's share of a SLURM job array",
    )
    scale.add_argument(
        "--executor",
        choices=["serial", "ray"],
        help="serial: here, one unit after another (default); ray: one Ray "
        "task per unit (pip install 'keras-adv[ray]')",
    )
    scale.add_argument(
        "--address", help="ray: the cluster to join (default: a local Ray instance)"
    )
    scale.add_argument(
        "--cpus-per-model", type=float, metavar="C", help="ray: CPUs per unit (1)"
    )
    scale.add_argument(
        "--gpus-per-model",
        type=float,
        metavar="G",
        help="ray: GPUs per unit, fractions share one (default 0)",
    )


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-adv",
        description="Adversarial attacks and adversarial training for Keras 3.",
    )
    parser.add_argument("--version", action="version", version=f"keras-adv {version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    sweep = commands.add_parser(
        "sweep",
        help="train at several budgets, attack at several budgets, report",
        description="Attack strength vs defense effect: trains the model "
        "(--model; the reference CNN by default) "
        "at each training epsilon, attacks it at each attack epsilon, writes "
        "runs/NAME/ (results.json, results.csv, report.md, figures). Rerun the "
        "same command to resume an interrupted sweep.",
    )
    _settings_arguments(sweep)
    _model_arguments(sweep)
    sweep.add_argument("--name", help="the run's folder under --out (default: default)")
    sweep.add_argument("--out", help="where runs go (default: runs)")
    sweep.add_argument("--train-eps", type=float, nargs="+", metavar="EPS")
    sweep.add_argument("--attack-eps", type=float, nargs="+", metavar="EPS")
    sweep.add_argument(
        "--attacks",
        nargs="+",
        metavar="ATTACK",
        help="fgsm, pgd<steps>, mim<steps>, apgd-ce, apgd-dlr, apgd-t, "
        "fab-t, square[<queries>], '-l2'/'-l1' for other norms, e.g. fgsm pgd20 "
        "apgd-ce",
    )
    sweep.add_argument("--train-attack", help="the training attack (default pgd7)")
    _flag(sweep, "--quick", "a sub-minute smoke run")
    _flag(
        sweep,
        "--no-checks",
        "skip the sanity checks per trained model (config: checks = false)",
    )
    _flag(sweep, "--overwrite", "replace a sweep with other settings in the folder")
    _recipe_arguments(sweep)
    _scale_arguments(sweep)

    report = commands.add_parser(
        "report",
        help="merge a sweep's finished units into its results and report",
        description="Merges the units of work finished so far in RUN_DIR (by "
        "shards, Ray tasks or plain runs) into results.json, results.csv, "
        "report.md and the figures, and says which units are missing.",
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="a sweep's folder")
    _output_flags(report)

    train = commands.add_parser("train", help="train and save a .keras model")
    _settings_arguments(train)
    _model_arguments(train)
    train.add_argument(
        "--epsilon", type=float, help="training budget; 0 trains clean (default 0.1)"
    )
    train.add_argument("--attack", help="fgsm or pgd<steps> (default pgd7)")
    train.add_argument("--output", required=True, help="the .keras file to write")
    _recipe_arguments(train)

    reproduce = commands.add_parser(
        "reproduce",
        help="run a paper's recipe; report our numbers beside the paper's",
        description="Trains and evaluates as a paper did (a recipe: the bundled "
        "ones, see --list, or a .toml file), into runs/RECIPE/ (the sweep's "
        "files and reproduction.md: each published number beside ours). "
        "Rerun the same command to resume. --epochs and --max-test-examples "
        "shorten a run; the report then says it is not comparable.",
    )
    reproduce.add_argument("recipe", nargs="?", help="a recipe name or .toml file")
    _flag(reproduce, "--list", "list the bundled recipes and exit")
    reproduce.add_argument("--epochs", type=int, help="fewer epochs: a shortened run")
    reproduce.add_argument(
        "--max-test-examples", type=int, help="fewer test examples: a shortened run"
    )
    reproduce.add_argument(
        "--name", help="the run's folder under --out (default: RECIPE)"
    )
    reproduce.add_argument("--out", help="where runs go (default: runs)")
    _flag(reproduce, "--overwrite", "replace a run with other settings in the folder")
    _output_flags(reproduce)

    evaluate = commands.add_parser(
        "evaluate",
        help="robust accuracy of a saved model, worst case and sanity checks",
        description="Attacks a saved model at each epsilon with each attack; "
        "prints robust accuracy, the worst case over attacks (robust only if "
        "no attack broke the example) and the sanity checks. A model saved by "
        "`keras-adv train` or `sweep` knows its data (name, split seed, "
        "SHA-256): they are the default --dataset, and other data are refused.",
    )
    _settings_arguments(evaluate)
    evaluate.add_argument("model", help="a .keras file")
    evaluate.add_argument(
        "--attacks",
        nargs="+",
        default=["fgsm", "pgd20"],
        help="attack names as for sweep, or autoattack (APGD-CE, APGD-T, FAB-T, "
        "Square, each on the examples still robust), or autoattack-rand (APGD-CE "
        "and APGD-DLR with 20 draws per gradient: models random at inference)",
    )
    evaluate.add_argument(
        "--epsilons", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2]
    )
    _flag(evaluate, "--no-checks", "skip the sanity checks")
    evaluate.add_argument(
        "--state",
        metavar="FILE",
        help="save each attack run's per-example results to FILE (JSON); "
        "rerun the same command after an interruption to resume",
    )
    return parser
