"""`AdversarialModel.fit` epoch time against hand-written TensorFlow loops.

Run: `python benchmarks/adversarial_fit_speed.py` (TensorFlow backend, about
5 minutes on 2 cores). Same model (the reference CNN), data (8,192 digits,
the 1,797 images tiled), batch 128 and optimizer for every variant. The
variants run in one process, one epoch each in turn for `--rounds` rounds
after a warm-up epoch, so that the drift of a shared machine spreads over
all of them; the median epoch is reported. Peak RSS comes from a separate
process per variant that trains two epochs.

Variants, each with jit_compile off and on:
- FGSM-mixed (eps 0.1, alpha 0.5): AdversarialModel; a hand-written step
  with three passes (attack, then clean + adversarial); a hand-written
  "shared pass" step whose clean backward pass yields the input gradient and
  the clean weight gradient together (two passes, as NSL's wrapper does).
- PGD-7-madry (eps 0.1): AdversarialModel, with its default logs (a clean
  forward pass for `clean_loss`) and with `log_clean=False`; a hand-written
  step (no clean pass).
"""

import argparse
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EPS, BATCH, EXAMPLES = 0.1, 128, 8192


def setup():
    import keras
    import numpy as np

    from keras_adv.experiments.data import load_digits
    from keras_adv.experiments.zoo import small_cnn

    (x, y), _ = load_digits(test_fraction=0.01)
    reps = -(-EXAMPLES // len(x))
    x, y = np.tile(x, (reps, 1, 1, 1))[:EXAMPLES], np.tile(y, reps)[:EXAMPLES]
    keras.utils.set_random_seed(0)
    return small_cnn(seed=0), x, y


def batches(x, y):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x)).batch(BATCH)


def keras_adv_runner(attack_name, jit):
    """A function that trains one epoch with AdversarialModel.fit."""
    import keras

    from keras_adv import FGSM
    from keras_adv import PGD
    from keras_adv import AdversarialModel

    model, x, y = setup()
    log_clean = True
    if attack_name == "fgsm":
        attack, objective = FGSM(EPS), "mixed"
    else:
        attack, objective = PGD(EPS, steps=7, seed=0), "madry"
        log_clean = attack_name != "pgd-no-clean-logs"
    adv = AdversarialModel(
        model=model, attack=attack, objective=objective, log_clean=log_clean
    )
    adv.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit,
    )
    dataset = batches(x, y)  # the hand-written loops' input pipeline
    return lambda: adv.fit(dataset, epochs=1, verbose=0)


def hand_written_runner(variant, jit):
    """A function that trains one epoch with a hand-written tf.function step."""
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

    def apply(loss_or_grads, tape=None):
        grads = loss_or_grads if tape is None else tape.gradient(loss_or_grads, weights)
        optimizer.apply_gradients(zip(grads, weights, strict=True))

    def fgsm_three_pass(xb, yb):
        x_adv = tf.clip_by_value(xb + EPS * tf.sign(input_grad(xb, yb)), 0.0, 1.0)
        with tf.GradientTape() as tape:
            clean = ce(yb, model(xb, training=True))
            adv = ce(yb, model(x_adv, training=True))
            loss = 0.5 * clean + 0.5 * adv
        apply(loss, tape)

    def fgsm_shared_pass(xb, yb):
        with tf.GradientTape() as tape:
            tape.watch(xb)
            clean = ce(yb, model(xb, training=True))
        *g_clean, g_x = tape.gradient(clean, weights + [xb])
        x_adv = tf.clip_by_value(xb + EPS * tf.sign(g_x), 0.0, 1.0)
        with tf.GradientTape() as tape:
            adv = ce(yb, model(x_adv, training=True))
        g_adv = tape.gradient(adv, weights)
        apply([0.5 * a + 0.5 * b for a, b in zip(g_clean, g_adv, strict=True)])

    def pgd_madry(xb, yb):
        step = 2.5 * EPS / 7
        x_adv = tf.clip_by_value(xb + tf.random.uniform(tf.shape(xb), -EPS, EPS), 0, 1)
        for _ in range(7):
            x_adv = x_adv + step * tf.sign(input_grad(x_adv, yb))
            x_adv = tf.clip_by_value(tf.clip_by_value(x_adv, xb - EPS, xb + EPS), 0, 1)
        with tf.GradientTape() as tape:
            loss = ce(yb, model(tf.stop_gradient(x_adv), training=True))
        apply(loss, tape)

    steps = {
        "fgsm-3pass": fgsm_three_pass,
        "fgsm-shared": fgsm_shared_pass,
        "pgd": pgd_madry,
    }
    optimizer.build(weights)
    step_fn = tf.function(steps[variant], jit_compile=jit)
    dataset = batches(x, y)

    def epoch():
        for xb, yb in dataset:
            step_fn(xb, yb)

    return epoch


VARIANTS = {
    "FGSM-mixed AdversarialModel": ("keras_adv", "fgsm"),
    "FGSM-mixed hand-written 3-pass": ("hand", "fgsm-3pass"),
    "FGSM-mixed hand-written shared": ("hand", "fgsm-shared"),
    "PGD-7-madry AdversarialModel": ("keras_adv", "pgd"),
    "PGD-7-madry AdversarialModel log_clean=False": (
        "keras_adv",
        "pgd-no-clean-logs",
    ),
    "PGD-7-madry hand-written": ("hand", "pgd"),
}


def runner(name, jit):
    kind, variant = VARIANTS[name]
    make = keras_adv_runner if kind == "keras_adv" else hand_written_runner
    return make(variant, jit)


def peak_rss(name, jit):
    """Peak RSS (MiB) of a fresh process that trains `name` for two epochs."""
    cmd = [sys.executable, __file__, "--rss", name] + (["--jit"] if jit else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rss", help=argparse.SUPPRESS)
    parser.add_argument("--jit", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss:
        epoch = runner(args.rss, args.jit)
        epoch()
        epoch()
        # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child
        # would report its parent's peak.
        with open("/proc/self/status") as status:
            line = next(row for row in status if row.startswith("VmHWM"))
        print(int(line.split()[1]) / 1024)
        return
    print(
        f"{EXAMPLES} digits, batch {BATCH}, small_cnn; median epoch of "
        f"{args.rounds} rounds, variants interleaved after a warm-up epoch"
    )
    print(
        f"{'variant':46} {'jit':>5} {'epoch s':>8} {'vs best hand':>12} {'peak RSS':>9}"
    )
    for prefix in ("FGSM-mixed", "PGD-7-madry"):
        keys = [(n, jit) for n in VARIANTS if n.startswith(prefix) for jit in (0, 1)]
        epochs = {key: runner(key[0], bool(key[1])) for key in keys}
        for epoch in epochs.values():
            epoch()  # traces and compiles
        times = {key: [] for key in keys}
        for _ in range(args.rounds):
            for key, epoch in epochs.items():
                start = time.perf_counter()
                epoch()
                times[key].append(time.perf_counter() - start)
        median = {key: sorted(t)[len(t) // 2] for key, t in times.items()}
        best = min(t for (name, _), t in median.items() if "hand" in name)
        for name, jit in keys:
            seconds = median[(name, jit)]
            print(
                f"{name:46} {str(bool(jit)):>5} {seconds:8.2f} {seconds / best:11.2f}x "
                f"{peak_rss(name, bool(jit)):7.0f}MiB",
                flush=True,
            )


if __name__ == "__main__":
    main()
