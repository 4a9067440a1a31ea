"""APGD-CE with 100 steps against PGD-100: the price of the adaptive schedule.

Run: `python benchmarks/attack_cost.py` (any `KERAS_BACKEND`). Attacks 4,096
digits (the 1,797 images tiled) at eps 0.1 on the reference CNN trained for
three epochs, batch 512. Both attacks take one forward and backward pass per
step; APGD adds its bookkeeping (momentum, best point, step halving) and one
pass for the start. Reports the median of `--repeats` warm runs, the variants
interleaved, the first call (with compilation) and robust accuracy.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_adv import APGD  # noqa: E402
from keras_adv import PGD  # noqa: E402
from keras_adv.experiments.data import load_digits  # noqa: E402
from keras_adv.experiments.zoo import small_cnn  # noqa: E402

EPS, STEPS, BATCH, EXAMPLES = 0.1, 100, 512, 4096


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    (x_train, y_train), _ = load_digits(seed=0)
    model = small_cnn(x_train.shape[1:], 10, seed=0)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, epochs=3, batch_size=64, verbose=0)
    reps = -(-EXAMPLES // len(x_train))
    x = np.concatenate([x_train] * reps)[:EXAMPLES]
    y = np.concatenate([y_train] * reps)[:EXAMPLES]
    attacks = {
        f"PGD-{STEPS}": PGD(EPS, steps=STEPS, seed=0),
        f"APGD-CE-{STEPS}": APGD(EPS, steps=STEPS, seed=0),
    }
    times = {name: [] for name in attacks}
    first, accuracy = {}, {}
    for name, attack in attacks.items():
        start = time.perf_counter()
        x_adv = attack.generate(model, x, y, batch_size=BATCH)
        first[name] = time.perf_counter() - start
        predictions = np.argmax(model.predict(x_adv, verbose=0, batch_size=1024), 1)
        accuracy[name] = float(np.mean(predictions == y))
    for _ in range(args.repeats):
        for name, attack in attacks.items():
            start = time.perf_counter()
            attack.generate(model, x, y, batch_size=BATCH)
            times[name].append(time.perf_counter() - start)
    base = np.median(times[f"PGD-{STEPS}"])
    print(f"backend {keras.backend.backend()}, {EXAMPLES} digits, batch {BATCH}")
    print("attack | median warm s | first call s | ratio to PGD | robust accuracy")
    for name in attacks:
        median = np.median(times[name])
        print(
            f"{name} | {median:.2f} | {first[name]:.2f} | {median / base:.2f}x "
            f"| {accuracy[name]:.3f}"
        )


if __name__ == "__main__":
    main()
