"""FGM on embeddings: `AdversarialModel(perturb="embeddings")` against a
hand-written TensorFlow loop doing the same.

Run: `KERAS_BACKEND=tensorflow python benchmarks/embedding_fgm_speed.py`
(about 2 minutes on 2 cores). A text classifier (Embedding(5000, 64,
mask_zero=True), Conv1D(64, 5), global max pooling, Dense(2)) on 4,096
random sequences of 128 token ids (the last quarter padding), batch 64,
Adam, FGM at L2 eps 1.0 on the embedding output with the mixed objective
(0.5 clean + 0.5 adversarial).

- "AdversarialModel": `fit` on the wrapped model.
- "hand-written": the competition recipe in one `tf.function` step: the
  clean forward and backward give the weight gradients and the embedding
  gradient together, `delta = eps * g / ||g||` (padding zeroed), then the
  adversarial forward and backward; two passes. The embedding table's two
  gradients (`tf.IndexedSlices`) are mixed either densely, or ("sparse")
  by concatenating the scaled slices, which is what Keras's own step and
  `AdversarialModel` give the optimizer: the same update, and the one to
  compare with.

On JAX and PyTorch (`KERAS_BACKEND=jax|torch`), where the hand-written
loop would be another program, it compares `AdversarialModel`'s two-pass
step (the default) with its general step (`shared_pass=False`: the attack's
own forward and backward, then the clean and adversarial passes).

Epochs alternate, one of each per round, after a warm-up epoch each;
medians are reported against the last variant.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

VOCAB, DIM, LENGTH, EXAMPLES, BATCH, EPS = 5000, 64, 128, 4096, 64, 1.0


def data():
    import numpy as np

    rng = np.random.default_rng(0)
    ids = rng.integers(1, VOCAB, (EXAMPLES, LENGTH)).astype("int32")
    ids[:, 3 * LENGTH // 4 :] = 0  # padding
    return ids, (ids[:, 0] % 2).astype("int32")


def pieces(seed=0):
    """`(embedding, body, model)`: the layers, and the model made of them."""
    import keras

    keras.utils.set_random_seed(seed)
    embedding = keras.layers.Embedding(VOCAB, DIM, mask_zero=True)
    embedded = keras.Input((LENGTH, DIM))
    x = keras.layers.Conv1D(64, 5, activation="relu")(embedded)
    x = keras.layers.GlobalMaxPooling1D()(x)
    body = keras.Model(embedded, keras.layers.Dense(2)(x))
    ids = keras.Input((LENGTH,), dtype="int32")
    return embedding, body, keras.Model(ids, body(embedding(ids)))


def keras_adv_epoch(ids, y, shared_pass=True, attack=None, objective="mixed"):
    """One `fit` epoch of `AdversarialModel` at the embeddings: FGM at `EPS`
    with the mixed objective unless `attack` and `objective` say otherwise."""
    import keras

    from keras_adv import FGSM
    from keras_adv import AdversarialModel

    _, _, model = pieces()
    adv = AdversarialModel(
        model=model,
        attack=attack or FGSM(EPS, norm="l2"),
        objective=objective,
        perturb="embeddings",
        shared_pass=shared_pass,
    )
    adv.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return lambda: adv.fit(ids, y, batch_size=BATCH, epochs=1, verbose=0)


def hand_written_epoch(ids, y, sparse):
    import keras
    import tensorflow as tf

    embedding, body, model = pieces()
    weights = model.trainable_variables
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(weights)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def mix(clean, adv):
        if sparse and isinstance(clean, tf.IndexedSlices):  # as Keras's step
            return tf.IndexedSlices(
                tf.concat([0.5 * clean.values, 0.5 * adv.values], 0),
                tf.concat([clean.indices, adv.indices], 0),
                clean.dense_shape,
            )
        return 0.5 * (tf.convert_to_tensor(clean) + tf.convert_to_tensor(adv))

    @tf.function
    def step(ids_batch, y_batch):
        mask = tf.cast(ids_batch != 0, "float32")[..., None]
        with tf.GradientTape() as tape:
            embedded = embedding(ids_batch)
            tape.watch(embedded)
            clean = ce(y_batch, body(embedded))
        *g_clean, g_embedded = tape.gradient(clean, weights + [embedded])
        g_embedded = g_embedded * mask
        norm = tf.sqrt(tf.reduce_sum(g_embedded**2, axis=[1, 2], keepdims=True))
        delta = tf.stop_gradient(EPS * g_embedded / (norm + 1e-12))
        with tf.GradientTape() as tape:
            adv = ce(y_batch, body(embedding(ids_batch) + delta))
        g_adv = tape.gradient(adv, weights)
        grads = [mix(a, b) for a, b in zip(g_clean, g_adv, strict=True)]
        optimizer.apply_gradients(zip(grads, weights, strict=True))

    dataset = tf.data.Dataset.from_tensor_slices((ids, y)).shuffle(EXAMPLES)
    dataset = dataset.batch(BATCH)

    def epoch():
        for ids_batch, y_batch in dataset:
            step(ids_batch, y_batch)

    return epoch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import keras

    ids, y = data()
    if keras.backend.backend() == "tensorflow":
        epochs = {
            "AdversarialModel": keras_adv_epoch(ids, y),
            "hand-written, dense": hand_written_epoch(ids, y, sparse=False),
            "hand-written, sparse": hand_written_epoch(ids, y, sparse=True),
        }
    else:
        epochs = {
            "two-pass step": keras_adv_epoch(ids, y),
            "general step": keras_adv_epoch(ids, y, shared_pass=False),
        }
    race(
        epochs,
        args.rounds,
        f"{EXAMPLES} sequences of {LENGTH}, batch {BATCH}, FGM L2 eps {EPS} on "
        f"embeddings, mixed; {keras.backend.backend()}",
    )


def race(epochs, rounds, title):
    """Runs `{name: epoch}` alternately, `rounds` each after a tracing epoch,
    and prints each median (against the last one's) and every time."""
    last = list(epochs)[-1]
    times = {name: [] for name in epochs}
    for epoch in epochs.values():
        epoch()  # traces
    for _ in range(rounds):
        for name, epoch in epochs.items():
            start = time.perf_counter()
            epoch()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(f"{title}; median of {rounds} alternating epochs")
    for name, seconds in medians.items():
        ratio = seconds / medians[last]
        print(f"{name:22} {seconds:6.2f} s  {ratio:.2f}x  ", end="")
        print(" ".join(f"{t:.2f}" for t in times[name]))


if __name__ == "__main__":
    main()
