"""Tables and figures from sweep results: rendering only, no computation."""

import csv
import math
import os

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from keras_adv.attacks.names import WORST_CASE  # noqa: E402
from keras_adv.experiments.results_store import write_atomically  # noqa: E402

COLUMNS = (
    "train_epsilon",
    "attack",
    "attack_epsilon",
    "clean_accuracy",
    "robust_accuracy",
    "perturbation_linf",
    "perturbation_l2",
    "prediction_drift",
    "kl",
    "flip_rate",
)
FIGURES = ("heatmap.png", "robust_accuracy.png", "strength_vs_effect.png")
CSV_DIGITS = 4  # the CSV's floats, rounded: the examples resolve no more
NORM_NAMES = {"linf": "L-inf", "l2": "L2", "l1": "L1"}
DEFINITIONS = (
    "Definitions, per test image, averaged over the images: **L-inf** and "
    "**L2** are the norms of the perturbation the attack found; **drift** is "
    "the L2 distance between the model's clean and attacked probability "
    "vectors (0: unchanged; at most 1.41, all mass moved to another class); "
    "**KL** is KL(clean || attacked) of those probabilities; **flip rate** is "
    "the share of images whose predicted class changes under attack, right "
    "or wrong before. Higher drift, KL and flip rate at a budget mean a weaker "
    "defense."
)


def examples(results):
    """How many test images the cells were measured on, or None if unknown."""
    available = results.get("data", {}).get("test_examples")
    if available is None:
        return None
    return min(available, results["settings"]["max_test_examples"])


def wilson(accuracy, n, z=1.96):
    """The 95% Wilson score interval of an accuracy measured on `n` examples."""
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = (
        z
        / (1 + z * z / n)
        * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n))
    )
    return max(0.0, centre - half), min(1.0, centre + half)


def _norms(results):
    """The attacks' norms, as the report names them (`L-inf`, `L2`)."""
    configs = results.get("attack_configs", {})
    found = {
        configs.get(name, {}).get("norm", "linf")
        for name in results["settings"]["attacks"]
    }
    return " and ".join(NORM_NAMES.get(norm, norm) for norm in sorted(found))


def _grid(results):
    """`(train eps, attacks, attack eps, cells)`; attacks end with the worst case."""
    settings = results["settings"]
    cells = {
        (c["train_epsilon"], c["attack"], c["attack_epsilon"]): c
        for c in results["cells"]
    }
    attacks = list(settings["attacks"])
    if any(c["attack"] == WORST_CASE for c in results["cells"]):
        attacks.append(WORST_CASE)
    return settings["train_epsilons"], attacks, settings["attack_epsilons"], cells


def _last_attack(attacks):
    """The last attack the sweep ran (the strongest), not the worst case."""
    return [a for a in attacks if a != WORST_CASE][-1]


def write_report(results, out_dir):
    """Writes `results.csv`, `report.md` and the PNG figures into `out_dir`,
    each replaced whole (see `results_store.write_atomically`)."""
    write_atomically(os.path.join(out_dir, "results.csv"), _csv_of(results))
    for name, draw in zip(
        FIGURES, (_heatmap, _curves, _strength_vs_effect), strict=True
    ):
        figure = draw(results)
        save = figure.savefig
        write_atomically(
            os.path.join(out_dir, name),
            lambda h, save=save: save(h, dpi=90, format="png"),
            "wb",
        )
        plt.close(figure)
    text = markdown(results)
    write_atomically(os.path.join(out_dir, "report.md"), lambda h: h.write(text))


def _csv_of(results):
    def rounded(cell):
        return {
            key: round(value, CSV_DIGITS) if isinstance(value, float) else value
            for key, value in cell.items()
        }

    def write(handle):
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rounded(cell) for cell in results["cells"])

    return write


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _model_detail(results):
    """` (name, N parameters)` of the first trained model, when recorded."""
    for entry in results.get("training", {}).values():
        if "parameters" in entry:
            return f" ({entry['architecture']}, {entry['parameters']:,} parameters)"
    return ""


def _recipe_line(settings):
    """The training recipe in one sentence (fields from before it: defaults)."""
    get = settings.get
    optimizer = get("optimizer", "adam")
    if optimizer == "sgd":
        momentum = get("momentum")
        optimizer += f" (momentum {0.9 if momentum is None else momentum:g}"
        optimizer += ", Nesterov)" if get("nesterov") else ")"
    parts = [
        f"Recipe: {optimizer} at learning rate {get('learning_rate', 1e-3):g}, "
        f"{get('lr_schedule', 'constant')} schedule",
    ]
    if get("lr_milestones"):
        parts[0] += f" (/10 at {', '.join(f'{m:g}' for m in get('lr_milestones'))})"
    parts.append(f"batch size {settings['batch_size']}")
    if get("weight_decay"):
        parts.append(f"weight decay {get('weight_decay'):g} (decoupled)")
    augment = []
    if get("crop_padding"):
        augment.append(f"random crop (padding {get('crop_padding')})")
    if get("flip"):
        augment.append("horizontal flip")
    parts.append("augmentation: " + (" and ".join(augment) or "none"))
    if get("train_relative_step_size") is not None:
        parts.append(f"attack step {get('train_relative_step_size'):g} x eps")
    if get("train_random_start") is not None:
        start = "random" if get("train_random_start") else "clean"
        parts.append(f"attack start {start}")
    for key, name in (
        ("mixed_alpha", "alpha"),
        ("trades_beta", "beta"),
        ("gradalign_lam", "lambda"),
    ):
        if get(key) is not None:
            parts.append(f"{name} {get(key):g}")
    if get("awp_gamma"):
        warmup = get("awp_warmup")
        after = f" from epoch {warmup + 1}" if warmup else ""
        parts.append(f"AWP gamma {get('awp_gamma'):g}{after}")
    if get("early_stopping_split"):
        parts.append(
            "robust early stopping on "
            f"{get('early_stopping_split'):.0%} of the training data held out"
        )
    if get("precision", "float32") != "float32":
        parts.append(f"precision {get('precision')}")
    return "; ".join(parts) + "."


def _training_section(results, train_eps, attacks, cells):
    """Seconds and clean accuracy per trained model; with robust early
    stopping, the kept (best) epoch and held-out robust accuracy, last and best."""
    training = results.get("training", {})
    stopping = any("early_stopping" in entry for entry in training.values())
    header = ["train eps", "seconds", "clean accuracy"]
    if stopping:
        header += ["kept epoch", "held-out robust acc: last", "best (kept)"]
    rows = []
    for t in train_eps:
        entry = training.get(f"{t:g}", {})
        row = [
            f"{t:g}",
            f"{entry.get('seconds', float('nan')):.1f}",
            _value(cells, t, attacks[0], 0.0, "clean_accuracy"),
        ]
        if stopping:
            record = entry.get("early_stopping")
            row += (
                [
                    f"{record['best_epoch']} of {record['last_epoch']}",
                    f"{record['last_robust_accuracy']:.3f}",
                    f"{record['best_robust_accuracy']:.3f}",
                ]
                if record
                else ["-"] * 3
            )
        rows.append(row)
    return ["## Training", _table(header, rows)]


def markdown(results):
    """The report a person reads: settings, robust accuracy, strength vs effect."""
    settings = results["settings"]
    train_eps, attacks, attack_eps, cells = _grid(results)
    n = examples(results)
    used = (
        f"{n} test images (the first {n} of the test split)"
        if n is not None
        else f"up to {settings['max_test_examples']} test images"
    )
    parts = [
        "# keras-adv sweep",
        f"Dataset `{settings['dataset']}`; model `{settings.get('model', 'small_cnn')}`"
        f"{_model_detail(results)}, trained with "
        f"`{settings['train_attack']}` and the `{settings['objective']}` objective "
        f"for {settings['epochs']} epochs (seed {settings['seed']}); attacked on "
        f"{used}. Budgets are {_norms(results)} norms on the [0, 1] input scale.",
        _recipe_line(settings),
    ]
    if n is not None:
        low, high = wilson(0.5, n)
        parts.append(
            f"Each accuracy is followed by the half-width of its 95% interval "
            f"for {n} images (Wilson score interval, the wider side): at most "
            f"±{(high - low) / 2:.3f}, near 0.5. Two numbers closer than their "
            "intervals are not told apart by these images."
        )
    for attack in attacks:
        rows = []
        for t in train_eps:
            row = [f"train eps {t:g}"]
            for a in attack_eps:
                cell = cells.get((t, attack, a))
                row.append(
                    "-" if cell is None else _accuracy(cell["robust_accuracy"], n)
                )
            rows.append(row)
        title = (
            "## Worst case over all attacks (robust only if no attack broke it)"
            if attack == WORST_CASE
            else f"## Robust accuracy under `{attack}`"
        )
        parts += [title, _table(["", *[f"{a:g}" for a in attack_eps]], rows)]
    parts += _checks_section(results)
    parts += _training_section(results, train_eps, attacks, cells)
    strongest = _last_attack(attacks)
    rows = [
        [
            f"{t:g}",
            f"{a:g}",
            *(
                _value(cells, t, strongest, a, key)
                for key in (
                    "perturbation_linf",
                    "perturbation_l2",
                    "prediction_drift",
                    "kl",
                    "flip_rate",
                )
            ),
        ]
        for t in train_eps
        for a in attack_eps
    ]
    parts += [
        f"## Attack strength vs defense effect (`{strongest}`)",
        _table(
            ["train eps", "attack eps", "L-inf", "L2", "drift (L2)", "KL", "flip rate"],
            rows,
        ),
        DEFINITIONS,
        "## Figures",
        *[f"![{name[:-4]}]({name})" for name in FIGURES],
    ]
    return "\n\n".join(parts) + "\n"


def _checks_section(results):
    entries = results.get("checks", [])
    if not entries:
        return []
    rows = []
    for entry in entries:
        failed = [c for c in entry["checks"] if not c["passed"]]
        summary = (
            "not run (checks = false)"
            if not entry["checks"]
            else f"all {len(entry['checks'])} passed"
            if not failed
            else "; ".join(f"**{c['name']}**: {c['message']}" for c in failed)
        )
        rows.append([f"{entry['train_epsilon']:g}", summary])
    return [
        "## Sanity checks",
        "Carlini et al. 2019 (arXiv:1902.06705): signs that robustness is "
        "overstated. A failed check means the numbers above need a stronger "
        "attack before anyone relies on them.",
        _table(["train eps", "checks"], rows),
    ]


def _accuracy(value, n):
    """`0.889 ±0.029`: the accuracy and its interval's wider half, for n images."""
    if n is None:
        return f"{value:.3f}"
    low, high = wilson(value, n)
    return f"{value:.3f} ±{max(value - low, high - value):.3f}"


def _value(cells, t, attack, a, key):
    cell = cells.get((t, attack, a))
    return "-" if cell is None else f"{cell[key]:.3f}"


def _heatmap(results):
    train_eps, attacks, attack_eps, cells = _grid(results)
    attack = attacks[-1]  # the worst case when the sweep computed it
    values = [
        [
            cells[(t, attack, a)]["robust_accuracy"]
            if (t, attack, a) in cells
            else float("nan")
            for a in attack_eps
        ]
        for t in train_eps
    ]
    figure, axes = plt.subplots(
        figsize=(2.5 + 0.8 * len(attack_eps), 1.8 + 0.6 * len(train_eps))
    )
    image = axes.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            axes.text(
                j,
                i,
                f"{value:.2f}",
                ha="center",
                va="center",
                color="white" if value < 0.6 else "black",
                fontsize=8,
            )
    settings, n = results["settings"], examples(results)
    named = (
        f"worst case over {', '.join(settings['attacks'])}"
        if attack == WORST_CASE
        else attack
    )
    doubled = any(
        check["name"] == "more_iterations_change_little" and not check["passed"]
        for entry in results.get("checks", [])
        for check in entry["checks"]
    )
    if attack == WORST_CASE and doubled:
        named += " (+ doubled steps where a check asked)"
    images = f"{n} test images" if n is not None else "test images"
    axes.set(
        xticks=range(len(attack_eps)),
        xticklabels=[f"{a:g}" for a in attack_eps],
        yticks=range(len(train_eps)),
        yticklabels=[f"{t:g}" for t in train_eps],
        xlabel=f"attack epsilon ({_norms(results)})",
        ylabel="training epsilon",
        title=f"Robust accuracy, {named}\n{settings['dataset']}, {images}",
    )
    bar = figure.colorbar(image, ax=axes)
    bar.set_label("robust accuracy (higher: stronger)")
    figure.tight_layout()
    return figure


def _curves(results):
    train_eps, attacks, attack_eps, cells = _grid(results)
    figure, axes = plt.subplots(
        1, len(attacks), figsize=(5 * len(attacks), 3.6), squeeze=False
    )
    for axis, attack in zip(axes[0], attacks, strict=True):
        for t in train_eps:
            points = [
                (a, cells[(t, attack, a)]["robust_accuracy"])
                for a in attack_eps
                if (t, attack, a) in cells
            ]
            axis.plot(*zip(*points, strict=True), marker="o", label=f"train eps {t:g}")
        axis.set(
            xlabel=f"attack epsilon ({_norms(results)})",
            ylabel="robust accuracy (higher: stronger defense)",
            ylim=(0, 1),
            title=attack if attack != WORST_CASE else "worst case over the attacks",
        )
        axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def _strength_vs_effect(results):
    train_eps, attacks, attack_eps, cells = _grid(results)
    attack = _last_attack(attacks)
    figure, axis = plt.subplots(figsize=(5.5, 3.8))
    for t in train_eps:
        points = [
            (a, cells[(t, attack, a)]["prediction_drift"])
            for a in attack_eps
            if (t, attack, a) in cells
        ]
        axis.plot(*zip(*points, strict=True), marker="o", label=f"train eps {t:g}")
    axis.set(
        xlabel=f"attack strength: the budget epsilon ({_norms(results)})",
        ylabel="prediction drift (L2 of probabilities)",
        ylim=(0, None),
        title=f"Attack strength vs defense effect ({attack})",
    )
    axis.text(
        0.02,
        0.97,
        "lower drift at a budget: stronger defense",
        transform=axis.transAxes,
        va="top",
        fontsize=8,
    )
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure
