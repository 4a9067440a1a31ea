"""What `AdversarialMonitor` adds to a training epoch, default settings.

Run: `python benchmarks/monitor_overhead.py`. The reference CNN on the
digits training split (1,347 images, batch 64) trained with and without the
monitor (probe: the 450 test images, FGSM at its default budget), one epoch
each in turn for `--rounds` rounds after a warm-up epoch; medians reported.
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


def monitor_seconds(monitor, repeats=20):
    """Median time of the monitor's own work (attack and metrics) once."""
    values = []
    for _ in range(repeats):
        start = time.perf_counter()
        monitor.compute()
        values.append(time.perf_counter() - start)
    return float(np.median(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=31)
    args = parser.parse_args()
    (x, y), probe = load_digits()

    def runner(callbacks):
        model = small_cnn(seed=0)
        model.compile(
            "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
        return lambda: model.fit(
            x, y, batch_size=64, epochs=1, verbose=0, callbacks=callbacks
        )

    monitor = AdversarialMonitor(probe)
    variants = {"plain fit": runner([]), "with AdversarialMonitor": runner([monitor])}
    for run in variants.values():
        run()
    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    assert len(monitor.history["adv_robust_accuracy"]) == 1  # it ran, last fit
    print(
        f"probe: {len(monitor.probe)} images; monitor on its own: "
        f"{monitor_seconds(monitor) * 1000:.1f} ms"
    )
    base = float(np.median(times["plain fit"]))
    for name, values in times.items():
        median = float(np.median(values))
        print(f"{name:26} {median * 1000:7.1f} ms/epoch  {median / base - 1:+6.1%}")


if __name__ == "__main__":
    main()
