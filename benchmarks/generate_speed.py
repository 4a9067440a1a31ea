"""`Attack.generate` against a hand-written `tf.function` doing the same math.

Run: `make bench` (or `python benchmarks/generate_speed.py`). TensorFlow
backend. Attacks 10,000 digits (the 1,797 images tiled) with FGSM and
PGD-10 (L-inf, eps 0.1) on the reference CNN, batch 500, both sides
returning NumPy arrays. Reports the median of `--repeats` warm runs, the
variants interleaved, and the first call, which includes tracing.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_adv import FGSM  # noqa: E402
from keras_adv import PGD  # noqa: E402
from keras_adv.experiments.data import load_digits  # noqa: E402
from keras_adv.experiments.zoo import small_cnn  # noqa: E402

EPS, STEPS, BATCH = 0.1, 10, 500


def hand_written(model, steps, random_start):
    """The loop a user would write: tape, sign, project, clip; steps unrolled."""
    step_size = EPS if steps == 1 else 2.5 * EPS / steps

    def loss(x, y):
        logits = model(x, training=False)
        return tf.reduce_sum(
            keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        )

    @tf.function(reduce_retracing=True)
    def attack(x, y):
        x_adv = x
        if random_start:
            x_adv = tf.clip_by_value(
                x + tf.random.uniform(tf.shape(x), -EPS, EPS), 0, 1
            )
        for _ in range(steps):
            with tf.GradientTape() as tape:
                tape.watch(x_adv)
                value = loss(x_adv, y)
            x_adv = x_adv + step_size * tf.sign(tape.gradient(value, x_adv))
            x_adv = tf.clip_by_value(tf.clip_by_value(x_adv, x - EPS, x + EPS), 0, 1)
        return x_adv

    def run(x, y):
        parts = [
            attack(x[i : i + BATCH], y[i : i + BATCH]).numpy()
            for i in range(0, len(x), BATCH)
        ]
        return np.concatenate(parts)

    return run


def timed(variants, repeats):
    """First-call and median warm seconds of each variant, run round-robin.

    Interleaving the variants spreads the drift of a shared 2-core machine
    over all of them instead of biasing whichever ran last.
    """
    first, warm = {}, {name: [] for name in variants}
    for name, fn in variants.items():
        start = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - start
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            warm[name].append(time.perf_counter() - start)
    return first, {name: float(np.median(times)) for name, times in warm.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--examples", type=int, default=10_000)
    args = parser.parse_args()

    (x, y), _ = load_digits(test_fraction=0.01)
    reps = -(-args.examples // len(x))
    x, y = (
        np.tile(x, (reps, 1, 1, 1))[: args.examples],
        np.tile(y, reps)[: args.examples],
    )
    keras.utils.set_random_seed(0)
    model = small_cnn(seed=0)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x[:2000], y[:2000], epochs=2, verbose=0)

    cases = [
        ("FGSM", FGSM(EPS), FGSM(EPS, from_logits=True), 1, False),
        (
            "PGD-10",
            PGD(EPS, steps=STEPS, seed=0),
            PGD(EPS, steps=STEPS, seed=0, from_logits=True),
            STEPS,
            True,
        ),
    ]
    print(
        f"{len(x)} digits, batch {BATCH}, small_cnn, TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}, median of {args.repeats} interleaved warm runs"
    )
    print(f"{'attack':8} {'variant':28} {'first call':>10} {'warm':>8} {'ratio':>6}")
    for name, auto, logits, steps, random_start in cases:
        hand = hand_written(model, steps, random_start)
        variants = {
            "hand-written tf.function": lambda hand=hand: hand(x, y),
            "generate (auto logits)": lambda a=auto: a.generate(model, x, y, BATCH),
            "generate (from_logits=True)": lambda a=logits: a.generate(
                model, x, y, BATCH
            ),
        }
        first, warm = timed(variants, args.repeats)
        base = warm["hand-written tf.function"]
        for label in variants:
            print(
                f"{name:8} {label:28} {first[label]:9.2f}s {warm[label]:7.2f}s "
                f"{warm[label] / base:6.2f}"
            )


if __name__ == "__main__":
    main()
