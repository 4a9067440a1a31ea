"""L1 attacks on the digits reference CNN: PGD-L1 against L1-APGD, with times.

Run: `python benchmarks/l1_attacks.py` (any `KERAS_BACKEND`; about a minute
on two CPU cores). Trains the reference CNN clean for `--epochs` epochs as
the sweep does, then attacks the first `--examples` digits test images at
each L1 budget in `--eps` with PGD-20-L1 (the SLIDE step: the top 1% of
coordinates), APGD-CE-L1 and APGD-T-L1 (Croce & Hein 2021: an adaptive
share of coordinates, 100 steps), each alone, and reports robust accuracy
and seconds per attack (all budgets).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_adv import evaluate_robustness  # noqa: E402
from keras_adv.experiments.data import load  # noqa: E402
from keras_adv.experiments.sweep import SweepSettings  # noqa: E402
from keras_adv.experiments.sweep import train_model  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--eps", type=float, nargs="+", default=[1.0, 2.0, 4.0, 8.0])
    args = parser.parse_args()
    data = load("digits", seed=0)
    model, _ = train_model(SweepSettings(epochs=args.epochs), 0.0, data)
    x, y = data[1]
    test = (x[: args.examples], y[: args.examples])
    print("attack | " + " | ".join(f"eps {e:g}" for e in args.eps) + " | seconds")
    for name in ("pgd20-l1", "apgd-ce-l1", "apgd-t-l1"):
        start = time.perf_counter()
        result = evaluate_robustness(
            model, test, epsilons=args.eps, attacks=[name], checks=False, seed=0
        )
        seconds = time.perf_counter() - start
        values = " | ".join(f"{a:.3f}" for a in result.robust_accuracy[name])
        print(f"{name} | {values} | {seconds:.1f}")
    print(f"clean accuracy {result.clean_accuracy:.3f} on {len(test[1])} images")


if __name__ == "__main__":
    main()
