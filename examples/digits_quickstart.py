"""Train a small CNN on digits clean and adversarially; attack both.

Run: `make demo` (or `python examples/digits_quickstart.py`). A few minutes
on two CPU cores. Adversarial training here uses only the attack API: each
epoch, PGD examples are made against the current weights with
`attack.generate` and the model is fitted on clean and adversarial examples
together (the mixed objective of Goodfellow et al. with examples refreshed
once per epoch). `keras_adv.AdversarialModel` will do this per batch.
"""

import argparse
import time

import keras
import numpy as np

from keras_adv import FGSM
from keras_adv import PGD
from keras_adv.data import load_digits
from keras_adv.zoo import small_cnn


def compiled_model(seed):
    model = small_cnn(seed=seed)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def train(x, y, epochs, attack=None, seed=0):
    keras.utils.set_random_seed(seed)
    model = compiled_model(seed)
    for _ in range(epochs):
        x_fit, y_fit = x, y
        if attack is not None:
            x_adv = attack.generate(model, x, y, batch_size=256)
            x_fit, y_fit = np.concatenate([x, x_adv]), np.concatenate([y, y])
        model.fit(x_fit, y_fit, batch_size=64, epochs=1, shuffle=True, verbose=0)
    return model


def accuracy(model, x, y):
    predictions = model.predict(x, batch_size=512, verbose=0)
    return float(np.mean(np.argmax(predictions, axis=-1) == y))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--epsilon",
        type=float,
        default=0.2,
        help="L-inf budget on the [0, 1] scale (default 0.2)",
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = load_digits(seed=args.seed)
    eps = args.epsilon
    attacks = {
        f"FGSM eps={eps:g}": FGSM(eps),
        f"PGD-10 eps={eps:g}": PGD(eps, steps=10, seed=args.seed),
        f"PGD-20 eps={eps:g}": PGD(eps, steps=20, seed=args.seed),
    }
    trainings = {
        "clean": None,
        f"PGD-7 eps={eps:g} (mixed)": PGD(eps, steps=7, seed=args.seed),
    }
    print(
        f"digits: {len(x_train)} train / {len(x_test)} test images, "
        f"{args.epochs} epochs, keras {keras.__version__} "
        f"({keras.backend.backend()})"
    )
    rows = []
    for name, attack in trainings.items():
        start = time.perf_counter()
        model = train(x_train, y_train, args.epochs, attack, args.seed)
        seconds = time.perf_counter() - start
        row = [name, f"{accuracy(model, x_test, y_test):.3f}"]
        for test_attack in attacks.values():
            x_adv = test_attack.generate(model, x_test, y_test, batch_size=512)
            row.append(f"{accuracy(model, x_adv, y_test):.3f}")
        rows.append(row + [f"{seconds:.0f}s"])
    header = ["training", "clean acc", *attacks, "train time"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for line in [header, ["-" * w for w in widths], *rows]:
        print(" | ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)))


if __name__ == "__main__":
    main()
