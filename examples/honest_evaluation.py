"""Honest robustness numbers: PGD-20 alone vs the worst case over stronger attacks.

Trains the digits CNN clean and with PGD-7 (madry objective, eps 0.2), then
evaluates both with PGD-20 and AutoAttack's standard set (APGD-CE, APGD-T,
FAB-T, Square) at eps 0.1 and 0.2, with the sanity checks. Prints one table
per model and the checks that fired. Run:

    python examples/honest_evaluation.py            # 11 min before FAB-T
                                                    # joined the set; longer
    python examples/honest_evaluation.py --quick    # small budgets, 128 test
                                                    # images: 27 s

Times on this project's 2-core CPU with TensorFlow (2026-12-02 for --quick).
"""

import argparse
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_adv  # noqa: E402
from keras_adv import evaluate_robustness  # noqa: E402
from keras_adv.attacks.names import WORST_CASE  # noqa: E402
from keras_adv.experiments.data import load  # noqa: E402
from keras_adv.experiments.sweep import SweepSettings  # noqa: E402
from keras_adv.experiments.sweep import train_model  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small budgets")
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    data = load("digits", seed=0)
    settings = SweepSettings(epochs=args.epochs)
    for train_eps in (0.0, 0.2):
        model, _ = train_model(settings, train_eps, data)
        # Attack names as on the command line (see keras_adv.attacks.get).
        attacks = ["pgd20", "apgd-ce20", "square200"] if args.quick else ["pgd20"]
        if not args.quick:
            attacks += keras_adv.autoattack(0.1, seed=0).values()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", keras_adv.RobustnessWarning)
            result = evaluate_robustness(
                model,
                data[1],
                epsilons=[0.1, 0.2],
                attacks=attacks,
                max_examples=128 if args.quick else None,
                seed=0,
            )
        title = "clean" if train_eps == 0 else f"PGD-7 madry eps {train_eps:g}"
        print(f"## {title}: clean accuracy {result.clean_accuracy:.3f}")
        print("attack | eps 0.1 | eps 0.2")
        rows = {**result.robust_accuracy, WORST_CASE: result.worst_case}
        for name, row in rows.items():
            print(f"{name} | " + " | ".join(f"{value:.3f}" for value in row))
        failed = result.failed_checks
        print(
            f"checks: {len(result.checks) - len(failed)} passed, {len(failed)} failed"
        )
        for check in failed:
            print(f"  FAILED {check.name}: {check.message}")


if __name__ == "__main__":
    main()
