"""Tables and figures from sweep results: rendering only, no computation."""

import csv
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
    def write(handle):
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(results["cells"])

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
    for key, name in (("mixed_alpha", "alpha"), ("trades_beta", "beta")):
        if get(key) is not None:
            parts.append(f"{name} {get(key):g}")
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
    parts = [
        "# keras-adv sweep",
        f"Dataset `{settings['dataset']}`; model `{settings.get('model', 'small_cnn')}`"
        f"{_model_detail(results)}, trained with "
        f"`{settings['train_attack']}` and the `{settings['objective']}` objective "
        f"for {settings['epochs']} epochs (seed {settings['seed']}); attacked on "
        f"up to {settings['max_test_examples']} test images. Budgets are L-inf on "
        "the [0, 1] input scale.",
        _recipe_line(settings),
    ]
    for attack in attacks:
        rows = []
        for t in train_eps:
            row = [f"train eps {t:g}"]
            for a in attack_eps:
                cell = cells.get((t, attack, a))
                row.append("-" if cell is None else f"{cell['robust_accuracy']:.3f}")
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
        figsize=(1.0 + 0.8 * len(attack_eps), 1.2 + 0.6 * len(train_eps))
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
    axes.set(
        xticks=range(len(attack_eps)),
        xticklabels=[f"{a:g}" for a in attack_eps],
        yticks=range(len(train_eps)),
        yticklabels=[f"{t:g}" for t in train_eps],
        xlabel="attack epsilon",
        ylabel="training epsilon",
        title=f"Robust accuracy under {attack}",
    )
    figure.colorbar(image, ax=axes)
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
            xlabel="attack epsilon", ylabel="robust accuracy", ylim=(0, 1), title=attack
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
            (
                cells[(t, attack, a)]["perturbation_l2"],
                cells[(t, attack, a)]["prediction_drift"],
            )
            for a in attack_eps
            if (t, attack, a) in cells
        ]
        axis.plot(*zip(*points, strict=True), marker="o", label=f"train eps {t:g}")
    axis.set(
        xlabel="attack strength: mean L2 norm of the perturbation",
        ylabel="defense effect: prediction drift (L2)",
        title=f"Attack strength vs defense effect ({attack})",
    )
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure
