"""Adversarial training of a text classifier in embedding space (FGM).

Token ids cannot be perturbed; `AdversarialModel(..., perturb="embeddings")`
perturbs the output of the model's token embedding instead. This trains the
same small classifier three times, clean and with FGM (one L2-normalised
step of the loss's gradient at the embeddings, the classic recipe of Miyato
et al. 2016) at an absolute and at a relative budget, and prints for each:
clean test accuracy, robust accuracy under PGD-10 in embedding space at
several L2 budgets, the share of predictions
each budget flips, and robust accuracy at a budget relative to each
sequence's embedding norm (`relative_budget=True`: an absolute budget can
be met by growing the embeddings). Embedding-space robustness is a
sensitivity measure, not a word-substitution attack.

The task is synthetic, so it runs offline: sequences of 8 to 24 token ids
from a vocabulary of 500, padded with 0; tokens 1-25 count for the
positive class, 26-50 for the negative one, the rest are neutral; the label
says which kind is in the majority (ties are removed). For IMDB, online:
`keras.datasets.imdb.load_data(num_words=VOCAB)` gives lists of ids to pad
with `keras.utils.pad_sequences(x, maxlen=LENGTH)` (0 is padding there too).

Run: `python examples/text_embedding_adversarial.py` (13 s on this project's
2-core CPU with TensorFlow, 2026-12-02); `--epochs` and `--examples` change
the size.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from keras_adv import FGSM  # noqa: E402
from keras_adv import PGD  # noqa: E402
from keras_adv import AdversarialModel  # noqa: E402

VOCAB, LENGTH, DIM = 500, 24, 16
POSITIVE, NEGATIVE = range(1, 26), range(26, 51)
TRAIN_EPS = 0.3  # L2, over a whole sequence's embeddings
ATTACK_EPS = (0.1, 0.3, 0.6)
RELATIVE_EPS = 0.2  # a share of each sequence's embedding norm
TRAIN_RELATIVE_EPS = 0.2
CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def synthetic_task(examples, seed):
    """`(ids, labels)`: majority of positive vs negative tokens, padded with 0."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((examples, LENGTH), "int32")
    labels = np.zeros(examples, "int32")
    kept = 0
    while kept < examples:
        length = rng.integers(8, LENGTH + 1)
        tokens = rng.integers(1, VOCAB, length)
        positive = np.isin(tokens, POSITIVE).sum()
        negative = np.isin(tokens, NEGATIVE).sum()
        if positive == negative:
            continue
        ids[kept, :length] = tokens
        labels[kept] = int(positive > negative)
        kept += 1
    return ids, labels


def classifier(seed):
    keras.utils.set_random_seed(seed)
    ids = keras.Input((LENGTH,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, DIM, mask_zero=True, name="tokens")(ids)
    x = keras.layers.GlobalAveragePooling1D()(x)  # honours the padding mask
    x = keras.layers.Dense(32, activation="relu")(x)
    return keras.Model(ids, keras.layers.Dense(2)(x), name="text_classifier")


def train(budget, data, epochs, seed):
    """The classifier trained clean (`budget` None) or with FGM at
    `(eps, relative)`."""
    model = classifier(seed)
    trained = model
    if budget is not None:
        eps, relative = budget
        trained = AdversarialModel(
            model=model,
            attack=FGSM(eps, norm="l2"),
            perturb="embeddings",
            relative_budget=relative,
        )
    trained.compile(keras.optimizers.Adam(3e-3), CE, metrics=["accuracy"])
    trained.fit(*data, epochs=epochs, batch_size=64, verbose=0)
    return model


def measure(model, data, eps, relative=False):
    """Robust accuracy and flip rate under PGD-10 (L2, embeddings) at `eps`
    (with `relative`, a share of each sequence's embedding norm)."""
    ids, labels = data
    attacker = AdversarialModel(
        model=model,
        attack=PGD(eps, norm="l2", steps=10, seed=0),
        perturb="embeddings",
        relative_budget=relative,
    )
    attacker.compile("sgd", CE)
    x, y = ops.convert_to_tensor(ids), ops.convert_to_tensor(labels)
    delta = attacker.adversarial_examples(x, y)
    logits = attacker.layer_perturbation.forward(lambda v: model(v), x, delta)
    predicted = ops.convert_to_numpy(ops.argmax(logits, axis=-1))
    clean = np.argmax(model.predict(ids, verbose=0), axis=-1)
    return float(np.mean(predicted == labels)), float(np.mean(predicted != clean))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--examples", type=int, default=4000)
    args = parser.parse_args()
    train_data = synthetic_task(args.examples, seed=0)
    test_data = synthetic_task(1000, seed=1)
    header = ["training", "clean acc"]
    header += [f"PGD-10 L2 eps={e:g}" for e in ATTACK_EPS]
    header += [f"flipped eps={e:g}" for e in ATTACK_EPS]
    header += [f"PGD-10 relative {RELATIVE_EPS:g}"]
    print(" | ".join(header))
    trainings = (
        ("clean", None),
        (f"FGM eps={TRAIN_EPS:g}", (TRAIN_EPS, False)),
        (f"FGM relative {TRAIN_RELATIVE_EPS:g}", (TRAIN_RELATIVE_EPS, True)),
    )
    for name, budget in trainings:
        model = train(budget, train_data, args.epochs, seed=0)
        clean = float(
            np.mean(
                np.argmax(model.predict(test_data[0], verbose=0), -1) == test_data[1]
            )
        )
        measured = [measure(model, test_data, e) for e in ATTACK_EPS]
        robust, flipped = zip(*measured, strict=True)
        norms = np.linalg.norm(
            ops.convert_to_numpy(model.get_layer("tokens")(test_data[0]))
            * (test_data[0] != 0)[..., None],
            axis=(1, 2),
        )
        relative, _ = measure(model, test_data, RELATIVE_EPS, relative=True)
        cells = [name, f"{clean:.3f}"] + [f"{r:.3f}" for r in robust]
        cells += [f"{f:.3f}" for f in flipped] + [f"{relative:.3f}"]
        print(" | ".join(cells))
        print(f"  (median L2 norm of a sequence's embeddings: {np.median(norms):.2f})")


if __name__ == "__main__":
    main()
