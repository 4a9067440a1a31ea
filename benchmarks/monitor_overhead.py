"""What `AdversarialMonitor` adds to a training epoch, default settings.

Run: `python benchmarks/monitor_overhead.py`. The reference CNN on the
digits training split (1,347 images, batch 64), with and without the
monitor (probe: the test images, capped at the default 64; FGSM at the
default budget). Each run is one `fit` of `--epochs` epochs; a timer callback
placed after the monitor measures each epoch as Keras runs it, and a mark
placed before it splits off the monitor's own work. Runs with and without
alternate `--repeats` times, in turn first (the order alone shifts a pair by
a few percent on a busy machine); reported: the median epoch of each run, the
relative overhead, the monitor's own milliseconds per epoch, and the medians
over runs.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_adv.callbacks import AdversarialMonitor  # noqa: E402
from keras_adv.experiments.data import load_digits  # noqa: E402
from keras_adv.experiments.zoo import small_cnn  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    """Epoch times; with `before`, also the time spent in callbacks between."""

    def __init__(self, before=None):
        super().__init__()
        self.before = before

    def on_train_begin(self, logs=None):
        self.seconds, self.callbacks = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.seconds.append(now - self.start)
        if self.before is not None:
            self.callbacks.append(now - self.before.reached)


class Mark(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.reached = time.perf_counter()


def median_epoch(x, y, epochs, callbacks):
    """`(median epoch, median time in callbacks)` in seconds, first epoch left out."""
    model = small_cnn(seed=0)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    mark = Mark()
    timer = EpochTimer(mark)
    model.fit(
        x,
        y,
        batch_size=64,
        epochs=epochs + 1,
        verbose=0,
        callbacks=[mark] + callbacks + [timer],
    )
    # The first epoch compiles.
    return float(np.median(timer.seconds[1:])), float(np.median(timer.callbacks[1:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    (x, y), probe = load_digits()
    ratios, own = [], []
    for repeat in range(args.repeats):
        runs = {
            "plain": lambda: median_epoch(x, y, args.epochs, []),
            "monitored": lambda: median_epoch(
                x, y, args.epochs, [AdversarialMonitor(probe)]
            ),
        }
        order = ["plain", "monitored"][:: 1 if repeat % 2 == 0 else -1]
        times = {name: runs[name]() for name in order}
        plain, monitored = times["plain"][0], times["monitored"][0]
        ratios.append(monitored / plain - 1)
        own.append(times["monitored"][1] / plain)
        print(
            f"run {repeat + 1} ({order[0]} first): plain {plain * 1000:.1f} "
            f"ms/epoch, with the monitor {monitored * 1000:.1f} ms/epoch "
            f"({ratios[-1]:+.1%}); the monitor's own work "
            f"{times['monitored'][1] * 1000:.1f} ms ({own[-1]:.1%})",
            flush=True,
        )
    print(
        f"median over {args.repeats} runs: overhead {np.median(ratios):+.1%} "
        f"(runs {min(ratios):+.1%} .. {max(ratios):+.1%}); the monitor's own "
        f"work {np.median(own):.1%} of a plain epoch"
    )


if __name__ == "__main__":
    main()
