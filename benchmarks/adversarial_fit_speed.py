"""`AdversarialModel.fit` epoch time against hand-written TensorFlow loops.

Run: `python benchmarks/adversarial_fit_speed.py` (TensorFlow backend, about
3 minutes on 2 cores). Same model (the reference CNN), data (8,192 digits,
the 1,797 images tiled), batch 128 and optimizer for every variant; each
variant runs in its own process, so that peak RSS is its own. Reports the
median of `--epochs` timed epochs after one warm-up epoch.

Variants, each with jit_compile off and on:
- FGSM-mixed (eps 0.1, alpha 0.5): AdversarialModel; a hand-written step
  with three passes (attack, then clean + adversarial); a hand-written
  "shared pass" step whose clean backward pass yields the input gradient and
  the clean weight gradient together (two passes, as NSL's wrapper does).
- PGD-7-madry (eps 0.1): AdversarialModel; a hand-written step.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EPS, BATCH, EXAMPLES = 0.1, 128, 8192


def setup():
    import keras
    import numpy as np

    from keras_adv.data import load_digits
    from keras_adv.zoo import small_cnn

    (x, y), _ = load_digits(test_fraction=0.01)
    reps = -(-EXAMPLES // len(x))
    x, y = np.tile(x, (reps, 1, 1, 1))[:EXAMPLES], np.tile(y, reps)[:EXAMPLES]
    keras.utils.set_random_seed(0)
    return small_cnn(seed=0), x, y


def keras_adv_epochs(attack_name, jit, epochs):
    import keras

    from keras_adv import FGSM
    from keras_adv import PGD
    from keras_adv import AdversarialModel

    model, x, y = setup()
    if attack_name == "fgsm":
        attack, objective = FGSM(EPS), "mixed"
    else:
        attack, objective = PGD(EPS, steps=7, seed=0), "madry"
    adv = AdversarialModel(model=model, attack=attack, objective=objective)
    adv.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit,
    )
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    adv.fit(x, y, batch_size=BATCH, epochs=epochs + 1, verbose=0, callbacks=[Timer()])
    return times[1:]


def hand_written_epochs(variant, jit, epochs):
    import keras
    import tensorflow as tf

    model, x, y = setup()
    optimizer = keras.optimizers.Adam(1e-3)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    weights = model.trainable_variables

    def input_grad(x_adv, yb):
        with tf.GradientTape() as tape:
            tape.watch(x_adv)
            loss = ce(yb, model(x_adv, training=False))
        return tape.gradient(loss, x_adv)

    def fgsm_three_pass(xb, yb):
        x_adv = tf.clip_by_value(xb + EPS * tf.sign(input_grad(xb, yb)), 0.0, 1.0)
        with tf.GradientTape() as tape:
            clean = ce(yb, model(xb, training=True))
            adv = ce(yb, model(x_adv, training=True))
            loss = 0.5 * clean + 0.5 * adv
        optimizer.apply_gradients(
            zip(tape.gradient(loss, weights), weights, strict=True)
        )

    def fgsm_shared_pass(xb, yb):
        with tf.GradientTape() as tape:
            tape.watch(xb)
            clean = ce(yb, model(xb, training=True))
        *g_clean, g_x = tape.gradient(clean, weights + [xb])
        x_adv = tf.clip_by_value(xb + EPS * tf.sign(g_x), 0.0, 1.0)
        with tf.GradientTape() as tape:
            adv = ce(yb, model(x_adv, training=True))
        g_adv = tape.gradient(adv, weights)
        grads = [0.5 * a + 0.5 * b for a, b in zip(g_clean, g_adv, strict=True)]
        optimizer.apply_gradients(zip(grads, weights, strict=True))

    def pgd_madry(xb, yb):
        step = 2.5 * EPS / 7
        x_adv = tf.clip_by_value(xb + tf.random.uniform(tf.shape(xb), -EPS, EPS), 0, 1)
        for _ in range(7):
            x_adv = x_adv + step * tf.sign(input_grad(x_adv, yb))
            x_adv = tf.clip_by_value(tf.clip_by_value(x_adv, xb - EPS, xb + EPS), 0, 1)
        x_adv = tf.stop_gradient(x_adv)
        with tf.GradientTape() as tape:
            loss = ce(yb, model(x_adv, training=True))
        optimizer.apply_gradients(
            zip(tape.gradient(loss, weights), weights, strict=True)
        )

    step_fn = {
        "fgsm-3pass": fgsm_three_pass,
        "fgsm-shared": fgsm_shared_pass,
        "pgd": pgd_madry,
    }[variant]
    optimizer.build(weights)
    step_fn = tf.function(step_fn, jit_compile=jit)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x)).batch(BATCH)
    times = []
    for _ in range(epochs + 1):
        start = time.perf_counter()
        for xb, yb in dataset:
            step_fn(xb, yb)
        times.append(time.perf_counter() - start)
    return times[1:]


VARIANTS = {
    "FGSM-mixed AdversarialModel": ("keras_adv", "fgsm"),
    "FGSM-mixed hand-written 3-pass": ("hand", "fgsm-3pass"),
    "FGSM-mixed hand-written shared": ("hand", "fgsm-shared"),
    "PGD-7-madry AdversarialModel": ("keras_adv", "pgd"),
    "PGD-7-madry hand-written": ("hand", "pgd"),
}


def run_one(name, jit, epochs):
    kind, variant = VARIANTS[name]
    run = keras_adv_epochs if kind == "keras_adv" else hand_written_epochs
    times = sorted(run(variant, jit, epochs))
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"median_s": times[len(times) // 2], "rss_mib": rss_mib}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--jit", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return run_one(args.one, args.jit, args.epochs)
    print(
        f"{EXAMPLES} digits, batch {BATCH}, small_cnn, median of {args.epochs} "
        "epochs after one warm-up, one process per variant"
    )
    print(
        f"{'variant':34} {'jit':>5} {'epoch s':>8} {'vs best hand':>12} {'peak RSS':>9}"
    )
    for prefix in ("FGSM-mixed", "PGD-7-madry"):
        rows = {}
        for name in (n for n in VARIANTS if n.startswith(prefix)):
            for jit in (False, True):
                cmd = [
                    sys.executable,
                    __file__,
                    "--one",
                    name,
                    "--epochs",
                    str(args.epochs),
                ] + (["--jit"] if jit else [])
                out = subprocess.run(cmd, capture_output=True, text=True, check=True)
                rows[(name, jit)] = json.loads(out.stdout.strip().splitlines()[-1])
        best = min(r["median_s"] for (n, _), r in rows.items() if "hand" in n)
        for (name, jit), r in rows.items():
            print(
                f"{name:34} {str(jit):>5} {r['median_s']:8.2f} "
                f"{r['median_s'] / best:11.2f}x {r['rss_mib']:7.0f}MiB"
            )


if __name__ == "__main__":
    main()
