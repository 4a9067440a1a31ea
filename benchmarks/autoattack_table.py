"""AutoAttack's standard set on the digits reference model: each attack and the set.

Run: `python benchmarks/autoattack_table.py` (any `KERAS_BACKEND`; a few
minutes on two CPU cores). Trains the reference CNN as the demo does (PGD-7,
madry, 15 epochs) at `--train-eps`, then evaluates the digits test split
(450 images) with every attack of `keras_adv.autoattack` alone, L-inf at
`--linf` and L2 at `--l2`, timing each, and with the whole set at once,
every attack on every example and as AutoAttack's cascade (each attack only
on the examples still robust, `cascade=True`): both worst cases must be at
or below every member's robust accuracy.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_adv import autoattack  # noqa: E402
from keras_adv import evaluate_robustness  # noqa: E402
from keras_adv.experiments.data import load  # noqa: E402
from keras_adv.experiments.sweep import SweepSettings  # noqa: E402
from keras_adv.experiments.sweep import train_model  # noqa: E402


def table(model, test, epsilons, norm):
    """Rows `(attack, accuracies, seconds)`, then the set's worst case."""
    rows = []
    for name, attack in autoattack(max(epsilons), norm=norm, seed=0).items():
        start = time.perf_counter()
        result = evaluate_robustness(
            model, test, epsilons=epsilons, attacks={name: attack}, checks=False
        )
        rows.append((name, result.robust_accuracy[name], time.perf_counter() - start))
    members = list(rows)
    for label, cascade in (("all on all", False), ("cascade", True)):
        start = time.perf_counter()
        whole = evaluate_robustness(
            model, test, epsilons=epsilons, checks=False, cascade=cascade,
            attacks=autoattack(max(epsilons), norm=norm, seed=0),
        )  # fmt: skip
        seconds = time.perf_counter() - start
        rows.append((f"worst case (the set, {label})", whole.worst_case, seconds))
        for name, accuracies, _ in members:
            assert all(
                w <= a + 1e-9 for w, a in zip(whole.worst_case, accuracies, strict=True)
            ), name
    return whole.clean_accuracy, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-eps", type=float, default=0.2)
    parser.add_argument("--linf", type=float, nargs="+", default=[0.1, 0.2])
    parser.add_argument("--l2", type=float, nargs="+", default=[1.0, 1.5])
    args = parser.parse_args()
    data = load("digits", seed=0)
    model, _ = train_model(SweepSettings(epochs=15), args.train_eps, data)
    for norm, epsilons in (("linf", args.linf), ("l2", args.l2)):
        clean, rows = table(model, data[1], epsilons, norm)
        print(f"## {norm}, train eps {args.train_eps:g}: clean accuracy {clean:.3f}")
        print("attack | " + " | ".join(f"eps {e:g}" for e in epsilons) + " | seconds")
        for name, accuracies, seconds in rows:
            values = " | ".join(f"{a:.3f}" for a in accuracies)
            print(f"{name} | {values} | {seconds:.1f}")


if __name__ == "__main__":
    main()
