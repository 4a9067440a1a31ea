"""The job's training epoch on a paper's recipe against a hand-written loop.

Run: `KERAS_BACKEND=tensorflow python benchmarks/recipe_epoch_time.py`
(about 6 minutes on 2 cores; needs Debian's `dataset-fashion-mnist`, or
online `keras.datasets`). The recipe is the bundled Fashion-MNIST PGD-AT of
Croce et al. 2019 (`keras-adv reproduce fashion_mnist_pgd_at_croce2019`):
the small LeNet (`lenet_small`), PGD-40 at L-inf 0.1 with a random start
and step 2.5 eps / 40, loss 0.5 clean + 0.5 adversarial, Adam at 1e-3
divided by 10 after 90% of training, batch 128.

- "keras-adv job": `sweep.train_model`, the code `keras-adv sweep` and
  `reproduce` run, on `--examples` training images of Fashion-MNIST.
- "hand-written": the same model (same seed), optimizer, schedule, attack
  and loss in one `tf.function` step over a `tf.data` pipeline, as a user
  would write it without keras-adv.

Both run in one process, alternating: each of the job's epochs (timed from
`on_epoch_begin` to `on_epoch_end`) is followed by one hand-written epoch
run from the job's `on_epoch_end`, so a shared machine's drift reaches both.
The first epoch of each (tracing) is dropped; medians are reported.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

RECIPE = "fashion_mnist_pgd_at_croce2019"


def settings_and_data(examples, epochs):
    from keras_adv.experiments import data
    from keras_adv.experiments import reproduce

    recipe = reproduce.load(RECIPE)
    settings = recipe.settings(epochs=epochs)
    (x, y), test = data.load(settings.dataset, seed=settings.seed)
    return settings, ((x[:examples], y[:examples]), test)


def hand_written_epoch(settings, x, y, steps_per_epoch):
    """A function that trains one epoch of the recipe with a tf.function step."""
    import keras
    import tensorflow as tf

    from keras_adv.experiments import zoo

    eps = settings.train_epsilons[0]
    steps = int(settings.train_attack.removeprefix("pgd"))
    step = 2.5 * eps / steps
    alpha = settings.mixed_alpha
    keras.utils.set_random_seed(settings.seed)
    model = zoo.MODELS[settings.model](x.shape[1:], 10, settings.seed)
    total = settings.epochs * steps_per_epoch
    boundaries = [round(m * total) for m in settings.lr_milestones]
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        boundaries,
        [settings.learning_rate * 0.1**i for i in range(len(boundaries) + 1)],
    )
    optimizer = keras.optimizers.Adam(schedule)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    weights = model.trainable_variables
    optimizer.build(weights)

    @tf.function
    def train_step(xb, yb):
        x_adv = xb + tf.random.uniform(tf.shape(xb), -eps, eps)
        x_adv = tf.clip_by_value(x_adv, 0.0, 1.0)
        for _ in tf.range(steps):  # a while loop (autograph), not 40 copies
            with tf.GradientTape() as tape:
                tape.watch(x_adv)
                loss = ce(yb, model(x_adv, training=False))
            x_adv = x_adv + step * tf.sign(tape.gradient(loss, x_adv))
            x_adv = tf.clip_by_value(x_adv, xb - eps, xb + eps)
            x_adv = tf.clip_by_value(x_adv, 0.0, 1.0)
        x_adv = tf.stop_gradient(x_adv)
        with tf.GradientTape() as tape:
            clean = ce(yb, model(xb, training=True))
            adv = ce(yb, model(x_adv, training=True))
            loss = (1 - alpha) * clean + alpha * adv
        grads = tape.gradient(loss, weights)
        optimizer.apply_gradients(zip(grads, weights, strict=True))

    dataset = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=settings.seed)
        .batch(settings.batch_size)
    )

    def epoch():
        for xb, yb in dataset:
            train_step(xb, yb)

    return epoch


def main():
    import keras

    from keras_adv.experiments import sweep

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if keras.backend.backend() != "tensorflow":
        raise SystemExit("the hand-written loop needs KERAS_BACKEND=tensorflow")
    settings, data = settings_and_data(args.examples, args.rounds + 1)
    (x, y), _ = data
    hand = hand_written_epoch(settings, x, y, -(-len(x) // settings.batch_size))
    job_times, hand_times = [], []

    class Alternate(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            job_times.append(time.perf_counter() - self.start)
            start = time.perf_counter()
            hand()
            hand_times.append(time.perf_counter() - start)

    sweep.train_model(
        settings, settings.train_epsilons[0], data, callbacks=[Alternate()]
    )
    job, hand_median = (statistics.median(t[1:]) for t in (job_times, hand_times))
    print(
        f"{RECIPE}: {len(x)} Fashion-MNIST training images, batch "
        f"{settings.batch_size}, {settings.train_attack} mixed; median of "
        f"{args.rounds} epochs after a tracing epoch, alternating"
    )
    print(f"{'variant':24} {'epoch s':>8} {'per 60k s':>10}")
    for name, seconds in (("keras-adv job", job), ("hand-written", hand_median)):
        print(f"{name:24} {seconds:8.2f} {seconds * 60000 / len(x):10.0f}")
    print(f"ratio job / hand-written: {job / hand_median:.3f}")
    print("all epochs (s): job", [round(t, 2) for t in job_times])
    print("                hand", [round(t, 2) for t in hand_times])


if __name__ == "__main__":
    main()
