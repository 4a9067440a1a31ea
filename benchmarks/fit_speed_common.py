"""What `jax_fit_speed.py` and `torch_fit_speed.py` share.

Imports keras and keras_adv only (each script runs alone, the JAX one on a
GPU machine with neither TensorFlow nor torch): import it after setting
`KERAS_BACKEND`.
"""

import time

import keras
import numpy as np

from keras_adv import FGSM
from keras_adv import PGD
from keras_adv import AdversarialModel

# variant -> (attack kind, steps, random start, weight of the adversarial loss)
VARIANTS = {
    "clean": (None, 0, False, 0.0),
    "fgsm-mixed": ("fgsm", 1, False, 0.5),
    "fgsm-rs": ("fgsm", 1, True, 1.0),
    "pgd7": ("pgd", 7, True, 1.0),
}


def step_size(variant, eps):
    """The attack's step: eps (FGSM), 1.25 eps (FGSM-RS), 2.5 eps / steps (PGD)."""
    kind, steps, random_start, _ = VARIANTS[variant]
    if kind == "fgsm":
        return 1.25 * eps if random_start else eps
    return 2.5 * eps / max(steps, 1)


def compiled_model(model, variant, eps, log_clean=True):
    """`model` (an `AdversarialModel` around it unless `clean`), compiled.

    `log_clean=False` (madry variants only): no clean pass for the logs.
    """
    kind, steps, random_start, alpha = VARIANTS[variant]
    if kind == "fgsm":
        attack = FGSM(eps, random_start=random_start, seed=0)
    elif kind == "pgd":
        attack = PGD(eps, steps=steps, random_start=random_start, seed=0)
    if kind is not None:
        objective = "madry" if alpha == 1.0 else "mixed"
        model = AdversarialModel(
            model=model, attack=attack, objective=objective, log_clean=log_clean
        )
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def fit_epoch(model, x, y, batch):
    """A function timing one more `fit(epochs=1)` of `model`, in seconds."""

    def epoch():
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        return time.perf_counter() - start

    return epoch


def fastest(times):
    """`(name, {name: median seconds})`: the fastest of `{name: [seconds]}`."""
    medians = {name: float(np.median(seconds)) for name, seconds in times.items()}
    return min(medians, key=medians.get), medians
