"""Which inputs of a model an attack perturbs, and how several become one."""

import keras
from keras import ops

from keras_adv.argument_validation import is_float


class AdversarialInputs:
    """Selects the float inputs to attack and presents them as one tensor.

    A single input is attacked as it is. For dict or list inputs, the chosen
    inputs (dict keys or list positions in `names`, else every float input)
    are flattened per example and concatenated, so that every attack works
    unchanged; the threat model then bounds them jointly. Integer inputs such
    as token ids are never perturbed.

    Args:
        names: dict keys or list positions of the inputs to perturb, or
            `None` for every float input.
    """

    def __init__(self, names=None):
        if isinstance(names, (str, int)):
            names = [names]
        self.names = None if names is None else list(names)

    def apply(self, attack_fn, forward, x):
        """`x` with its chosen inputs replaced by `attack_fn(forward_flat, flat)`."""
        if not isinstance(x, (dict, list, tuple)):
            self._check_single(x)
            return attack_fn(forward, x)
        leaves, keys = _leaves_and_keys(x)
        chosen = self._choose(leaves, keys)
        shapes = [tuple(leaves[i].shape[1:]) for i in chosen]
        sizes = [_size(shape) for shape in shapes]
        dtype = leaves[chosen[0]].dtype

        def rebuild(flat):
            pieces = (
                ops.split(flat, _cumulative(sizes), axis=1)
                if len(sizes) > 1
                else [flat]
            )
            new = list(leaves)
            for i, piece, shape in zip(chosen, pieces, shapes, strict=True):
                new[i] = ops.cast(ops.reshape(piece, (-1,) + shape), leaves[i].dtype)
            return keras.tree.pack_sequence_as(x, new)

        flat = ops.concatenate(
            [
                ops.cast(ops.reshape(leaves[i], (-1, s)), dtype)
                for i, s in zip(chosen, sizes, strict=True)
            ],
            axis=1,
        )
        flat_adv = attack_fn(lambda f: forward(rebuild(f)), flat)
        return rebuild(flat_adv)

    def select(self, x):
        """The inputs of `x` that `apply` perturbs, as a list (maybe empty)."""
        if not isinstance(x, (dict, list, tuple)):
            return [x] if hasattr(x, "dtype") and is_float(x) else []
        leaves, keys = _leaves_and_keys(x)
        return [leaves[i] for i in self._choose(leaves, keys)]

    def _check_single(self, x):
        if self.names:
            raise ValueError(
                "Argument `perturb` names inputs, but the model takes a single "
                f"input. Received: perturb={self.names}"
            )
        if not is_float(x):
            raise ValueError(
                "The model has no float input to perturb: its input has dtype "
                f"{keras.backend.standardize_dtype(x.dtype)}. Attacks change "
                "continuous inputs (images, features), not ids."
            )

    def _choose(self, leaves, keys):
        if self.names is not None:
            missing = [n for n in self.names if n not in keys]
            if missing:
                raise ValueError(
                    f"Argument `perturb` names inputs that do not exist: {missing}. "
                    f"The model's inputs are {keys}. Received: perturb={self.names}"
                )
            chosen = [keys.index(n) for n in self.names]
            ints = [keys[i] for i in chosen if not is_float(leaves[i])]
            if ints:
                raise ValueError(
                    f"Argument `perturb` names non-float inputs {ints}; only float "
                    f"inputs can be perturbed. Received: perturb={self.names}"
                )
            return sorted(chosen)
        chosen = [i for i, leaf in enumerate(leaves) if is_float(leaf)]
        if not chosen:
            raise ValueError(
                "The model has no float input to perturb (inputs "
                f"{keys} are all integer). Attacks change continuous inputs."
            )
        return chosen


def _leaves_and_keys(x):
    if isinstance(x, dict):
        keys = sorted(x)
        return [x[k] for k in keys], keys
    return list(x), list(range(len(x)))


def _size(shape):
    size = 1
    for dim in shape:
        size *= dim
    return size


def _cumulative(sizes):
    points, total = [], 0
    for size in sizes[:-1]:
        total += size
        points.append(total)
    return points
