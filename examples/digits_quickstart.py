"""Train a small CNN on digits clean and adversarially; attack each model.

Run: `python examples/digits_quickstart.py`: 24 s on this project's 2-core
CPU with TensorFlow (2026-12-02, imports included). The adversarially
trained models are the same CNN wrapped
in `keras_adv.AdversarialModel`: one line changes, `fit` stays as it was.
"""

import argparse
import time

import keras
import numpy as np

from keras_adv import FGSM
from keras_adv import PGD
from keras_adv import AdversarialModel
from keras_adv.experiments.data import load_digits
from keras_adv.experiments.zoo import small_cnn


def train(x, y, epochs, seed, attack=None, objective="mixed"):
    keras.utils.set_random_seed(seed)
    model = small_cnn(seed=seed)
    trained = model
    if attack is not None:  # the one-line change
        trained = AdversarialModel(model=model, attack=attack, objective=objective)
    trained.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    trained.fit(x, y, batch_size=64, epochs=epochs, verbose=0)
    return model


def accuracy(model, x, y):
    predictions = model.predict(x, batch_size=512, verbose=0)
    return float(np.mean(np.argmax(predictions, axis=-1) == y))


def table(header, rows):
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join(
        " | ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True))
        for line in lines
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--epsilon",
        type=float,
        default=0.2,
        help="L-inf budget on the [0, 1] scale (default 0.2)",
    )
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = load_digits(seed=args.seed)
    eps = args.epsilon
    attacks = {
        f"FGSM eps={eps:g}": FGSM(eps),
        f"PGD-20 eps={eps:g}": PGD(eps, steps=20, seed=args.seed),
    }
    trainings = {
        "clean": (None, None),
        f"FGSM eps={eps:g}, mixed": (FGSM(eps), "mixed"),
        f"PGD-7 eps={eps:g}, madry": (PGD(eps, steps=7, seed=args.seed), "madry"),
    }
    print(
        f"digits: {len(x_train)} train / {len(x_test)} test images, "
        f"{args.epochs} epochs, keras {keras.__version__} "
        f"({keras.backend.backend()})"
    )
    rows = []
    for name, (attack, objective) in trainings.items():
        start = time.perf_counter()
        model = train(x_train, y_train, args.epochs, args.seed, attack, objective)
        seconds = time.perf_counter() - start
        row = [name, f"{accuracy(model, x_test, y_test):.3f}"]
        for test_attack in attacks.values():
            x_adv = test_attack.generate(model, x_test, y_test, batch_size=512)
            row.append(f"{accuracy(model, x_adv, y_test):.3f}")
        rows.append(row + [f"{seconds:.0f}s"])
    print(table(["training", "clean acc", *attacks, "train time"], rows))


if __name__ == "__main__":
    main()
