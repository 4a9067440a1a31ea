"""The cost of each training method, in clean-epoch units, on the digits CNN.

Run: `python benchmarks/objective_cost.py` (any `KERAS_BACKEND`; about two
minutes on two CPU cores). Each method trains the reference CNN on digits
(1,347 images, batch 64, eps 0.1); after a first epoch (compilation), the
methods' epochs are interleaved, `--rounds` each, and the median epoch time
is divided by the clean epoch's. Forward-backward passes per step, for
comparison: clean 1, FGSM-mixed 2 (one shared), FGSM-RS / N-FGSM 2, PGD-7
madry 8, TRADES (KL attack) and MART 9, FreeLB over PGD-3 3 (each shared)
plus a clean forward, regularized
(NSL's form, two-pass like FGSM-mixed) 2, GradAlign over FGSM 4 plus a
double backward, PGD-7 madry with AWP 9.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from fit_speed_common import fastest  # noqa: E402
from fit_speed_common import fit_epoch  # noqa: E402

from keras_adv import FGSM  # noqa: E402
from keras_adv import NFGSM  # noqa: E402
from keras_adv import PGD  # noqa: E402
from keras_adv import AdversarialModel  # noqa: E402
from keras_adv.experiments.data import load_digits  # noqa: E402
from keras_adv.experiments.zoo import small_cnn  # noqa: E402

EPS = 0.1
METHODS = {  # name -> (attack, objective); None trains clean
    "clean": None,
    "fgsm-mixed": (lambda: FGSM(EPS), "mixed"),
    "fgsm-rs madry": (lambda: FGSM(EPS, random_start=True, seed=0), "madry"),
    "n-fgsm madry": (lambda: NFGSM(EPS, seed=0), "madry"),
    "pgd7 madry": (lambda: PGD(EPS, steps=7, seed=0), "madry"),
    "pgd7 trades": (lambda: PGD(EPS, steps=7, seed=0), "trades"),
    "pgd7 mart": (lambda: PGD(EPS, steps=7, seed=0), "mart"),
    "pgd3 freelb": (lambda: PGD(EPS, steps=3, seed=0), "freelb"),
    "fgsm regularized": (lambda: FGSM(EPS), "regularized"),
    "fgsm gradalign": (lambda: FGSM(EPS), "gradalign"),
    "pgd7 madry awp": (lambda: PGD(EPS, steps=7, seed=0), "madry", 0.005),
}


def build(method, shape):
    model = small_cnn(shape, 10, seed=0)
    if METHODS[method] is not None:
        attack, objective, *awp = METHODS[method]
        model = AdversarialModel(
            model=model, attack=attack(), objective=objective,
            awp_gamma=awp[0] if awp else 0.0,
        )  # fmt: skip
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    (x, y), _ = load_digits(seed=0)
    epochs = {name: fit_epoch(build(name, x.shape[1:]), x, y, 64) for name in METHODS}
    for epoch in epochs.values():
        epoch()  # compiles
    times = {name: [] for name in METHODS}
    for _ in range(args.rounds):
        for name, epoch in epochs.items():
            times[name].append(epoch())
    _, medians = fastest(times)
    clean = medians["clean"]
    print(f"backend {keras.backend.backend()}; median of {args.rounds} epochs each")
    print("method | seconds per epoch | clean epochs")
    for name, seconds in medians.items():
        print(f"{name} | {seconds:.2f} | {seconds / clean:.1f}")


if __name__ == "__main__":
    main()
