"""Add AdversarialMonitor to an existing Keras pipeline and plot what it logs.

Run: `python examples/monitor_existing_pipeline.py --out monitor.png`: 10 s
on this project's 2-core CPU with TensorFlow (2026-12-02). The
pipeline (model, compile, fit with CSVLogger) is plain Keras; the monitor is
the one added line. It must come before CSVLogger / TensorBoard in the list.
"""

import argparse
import os

import keras
import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402

from keras_adv.callbacks import AdversarialMonitor  # noqa: E402
from keras_adv.experiments.data import load_digits  # noqa: E402
from keras_adv.experiments.zoo import small_cnn  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--out", default="monitor.png", help="the figure (PNG)")
    parser.add_argument("--csv", default=None, help="also keep the CSVLogger file")
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = load_digits()
    model = small_cnn(seed=0)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    callbacks = [
        AdversarialMonitor((x_test, y_test), epsilon=args.epsilon),  # the added line
        keras.callbacks.CSVLogger(args.csv or os.devnull),
    ]
    history = model.fit(
        x_train,
        y_train,
        epochs=args.epochs,
        batch_size=64,
        verbose=0,
        callbacks=callbacks,
    ).history

    epochs = range(1, len(history["loss"]) + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, history["adv_clean_accuracy"], label="clean accuracy (probe)")
    left.plot(epochs, history["adv_robust_accuracy"], label="robust accuracy (FGSM)")
    left.plot(epochs, history["adv_flip_rate"], label="flip rate")
    left.set(xlabel="epoch", ylim=(0, 1), title=f"Defense effect, eps={args.epsilon:g}")
    left.legend()
    right.plot(epochs, history["adv_prediction_drift"], label="prediction drift (L2)")
    right.plot(epochs, history["adv_kl"], label="KL(clean || perturbed)")
    right.plot(epochs, history["adv_perturbation_l2"], label="perturbation L2 norm")
    right.set(xlabel="epoch", title="Attack strength and prediction drift")
    right.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(
        f"robust accuracy by epoch: "
        f"{[round(v, 3) for v in history['adv_robust_accuracy']]}"
    )
    print(f"figure written to {args.out}")


if __name__ == "__main__":
    main()
