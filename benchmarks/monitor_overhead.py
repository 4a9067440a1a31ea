"""What `AdversarialMonitor` adds to a training epoch, default settings.

Run: `python benchmarks/monitor_overhead.py`. The reference CNN on the
digits training split (1,347 images, batch 64), with and without the
monitor (probe: the test images, capped at the default 64; FGSM at the
default budget). Each run is one `fit` of `--epochs` epochs; a timer callback
placed after the monitor measures each epoch as Keras runs it. Runs with and
without alternate `--repeats` times; reported: the median epoch of each run,
and the median over runs of the relative overhead.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_adv.callbacks import AdversarialMonitor  # noqa: E402
from keras_adv.data import load_digits  # noqa: E402
from keras_adv.zoo import small_cnn  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def median_epoch(x, y, epochs, callbacks):
    model = small_cnn(seed=0)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    timer = EpochTimer()
    model.fit(
        x, y, batch_size=64, epochs=epochs + 1, verbose=0, callbacks=callbacks + [timer]
    )
    return float(np.median(timer.seconds[1:]))  # the first epoch compiles


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    (x, y), probe = load_digits()
    ratios = []
    for repeat in range(args.repeats):
        plain = median_epoch(x, y, args.epochs, [])
        monitored = median_epoch(x, y, args.epochs, [AdversarialMonitor(probe)])
        ratios.append(monitored / plain - 1)
        print(
            f"run {repeat + 1}: plain {plain * 1000:.1f} ms/epoch, with the "
            f"monitor {monitored * 1000:.1f} ms/epoch ({ratios[-1]:+.1%})",
            flush=True,
        )
    print(f"median overhead over {args.repeats} runs: {np.median(ratios):+.1%}")


if __name__ == "__main__":
    main()
