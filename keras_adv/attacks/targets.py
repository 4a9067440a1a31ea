"""Target classes of the targeted attacks: the runners-up of the clean output."""

from keras import ops


def ranked_targets(clean, wanted, minimum, attack, why=""):
    """`(targets, count)`: per example, the `count` classes ranked highest after
    the predicted one (rank 0), `count = min(wanted, classes - 1)`.

    Args:
        clean: the model's outputs on the clean inputs, `(batch, classes)`.
        wanted: how many target classes the attack asks for.
        minimum: the fewest classes the attack works with.
        attack: the attack's name, for the error.
        why: why it needs `minimum` classes, for the error.
    """
    classes = clean.shape[-1]
    if classes is None or classes < minimum:
        raise ValueError(
            f"{attack} needs a model with at least {minimum} classes{why}. "
            f"Received: outputs of shape {tuple(clean.shape)}"
        )
    count = min(wanted, classes - 1)
    return ops.top_k(ops.cast(clean, "float32"), count + 1)[1][:, 1:], count
