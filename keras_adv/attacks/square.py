"""The Square attack: random search over square patches, no gradients."""

from collections.abc import Callable

import keras
from keras import ops
from keras import random

from keras_adv import argument_validation as validation
from keras_adv import losses
from keras_adv.attacks.apgd import succeeded
from keras_adv.attacks.attack import Attack

# Iteration (rescaled to 10,000 queries) after which the patch area halves.
_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


@keras.saving.register_keras_serializable(package="keras_adv")
class Square(Attack):
    """Score-based random search: one square patch re-drawn per query.

    Paper: "Square Attack: a query-efficient black-box adversarial attack via
    random search", Andriushchenko et al. 2020, arXiv:1912.00049 (L-inf).
    Starts from vertical stripes of `+-epsilon`; each query re-draws one
    square window of an example (size set by `p_init`, shrinking on the
    paper's schedule) to `+-epsilon` per channel, and keeps it if the margin
    `z_y - max_{i != y} z_i` falls. An example stops changing once
    misclassified. It calls the model only forwards (no gradients), so
    gradient masking does not stop it: the reason to run it.

    Threat model: `||x_adv - x||_inf <= epsilon`, `x_adv` inside `clip`.
    Inputs are images `(batch, height, width, channels)` (or channels first,
    by `keras.config.image_data_format()`) or `(batch, height, width)`.

    Args:
        epsilon: the perturbation budget, on the scale of the inputs.
        queries: model evaluations per example, the first being the stripes.
            Defaults to 5000 (AutoAttack's).
        p_init: the share of the image the first windows cover. Defaults to
            0.8 (AutoAttack's).
        loss: `None` for the margin (a target's margin when `targeted`), or
            an attack loss to raise (see `keras_adv.attacks.Attack`).
            Defaults to `None`.

    `clip`, `targeted`, `from_logits` and `seed` are as in
    `keras_adv.attacks.Attack`.

    Examples:

        >>> import numpy as np, keras
        >>> from keras_adv.attacks import Square
        >>> model = keras.Sequential(
        ...     [keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]
        ... )
        >>> x = np.random.rand(4, 6, 6, 1).astype("float32")
        >>> x_adv = Square(0.1, queries=50, seed=0).generate(model, x, np.arange(4) % 3)
        >>> bool(np.abs(x_adv - x).max() <= 0.1 + 1e-6)
        True
    """

    uses_gradients = False

    def __init__(
        self,
        epsilon: float,
        queries: int = 5000,
        p_init: float = 0.8,
        clip: tuple[float, float] | None = (0.0, 1.0),
        targeted: bool = False,
        loss: str | Callable | None = None,
        from_logits: bool | None = None,
        seed: int | None = None,
    ):
        super().__init__(epsilon, "linf", clip, targeted, loss, from_logits, seed)
        self.queries = validation.check_positive(queries, "queries", integer=True)
        self.p_init = validation.check_positive(p_init, "p_init")
        if self.p_init > 1:
            raise ValueError(
                f"Argument `p_init` must be in (0, 1]. Received: p_init={p_init}"
            )

    def perturb(self, forward, x, y, epsilon):
        images, restore = _channels_last(x)
        height, width, channels = images.shape[1:]
        if min(height, width) < 2:
            raise ValueError(
                "Square needs images at least 2x2. "
                f"Received: inputs of shape {tuple(x.shape)}"
            )
        objective = self._objective(y)
        batch = ops.shape(images)[0]

        def evaluate(candidate):
            # No gradients: stop_gradient also keeps eager backends (torch)
            # from chaining every query's graph onto the kept values.
            outputs = ops.stop_gradient(forward(restore(candidate)))
            return objective(outputs), succeeded(outputs, y, self.targeted)

        dtype = images.dtype
        stripes = ops.cast(self._signs((batch, 1, width, channels)), dtype)
        best = self._clip(images + epsilon * stripes)
        value, ok = evaluate(best)
        rows = ops.reshape(ops.arange(height, dtype="float32"), (1, height, 1, 1))
        cols = ops.reshape(ops.arange(width, dtype="float32"), (1, 1, width, 1))

        def query(i, state, draw):
            best, value, ok = state
            side = self._side(i, height, width)
            top, left, signs = draw(
                lambda: (
                    self._offset(batch, height - side + 1),
                    self._offset(batch, width - side + 1),
                    ops.cast(self._signs((batch, 1, 1, channels)), dtype),
                )
            )
            inside = ops.logical_and(
                ops.logical_and(rows >= top, rows < top + side),
                ops.logical_and(cols >= left, cols < left + side),
            )
            candidate = self._clip(ops.where(inside, images + epsilon * signs, best))
            new_value, new_ok = evaluate(candidate)
            take = ops.logical_and(ops.logical_not(ok), new_value > value)
            take = ops.logical_or(take, ops.logical_and(ops.logical_not(ok), new_ok))
            best = ops.where(ops.reshape(take, (-1, 1, 1, 1)), candidate, best)
            value = ops.where(take, new_value, value)
            return best, value, ops.logical_or(ok, new_ok)

        if self.queries > 1:
            best, _, _ = self.loop_drawing(1, self.queries, query, (best, value, ok))
        return restore(best)

    def _objective(self, y):
        if self.loss is not None:
            return self.output_objective(y)
        sign = 1.0 if self.targeted else -1.0  # targeted: raise the target's margin
        return lambda outputs: sign * losses.margin(y, outputs, self.from_logits)

    def _side(self, i, height, width):
        """The window side at query `i`: `sqrt(p * h * w)`, `p` halving on schedule."""
        progress = ops.floor(ops.cast(i, "float32") * (10000.0 / self.queries))
        halvings = sum(ops.cast(progress > t, "float32") for t in _HALVINGS)
        p = self.p_init / ops.power(2.0, halvings)
        side = ops.round(ops.sqrt(p * height * width))
        return ops.clip(side, 1.0, min(height, width) - 1.0)

    def _offset(self, batch, positions):
        """A uniform integer in `[0, positions)` per example, as floats."""
        draw = random.uniform((batch,), seed=self.seed_generator)
        return ops.reshape(ops.floor(draw * positions), (-1, 1, 1, 1))

    def _signs(self, shape):
        draw = random.uniform(shape, seed=self.seed_generator)
        return ops.where(draw < 0.5, -1.0, 1.0)  # float32, cast by the caller

    def _clip(self, images):
        if self.clip is None:
            return images
        return ops.clip(images, self.clip[0], self.clip[1])

    def get_config(self):
        config = super().get_config()
        config.pop("norm")
        return {**config, "queries": self.queries, "p_init": self.p_init}


def _channels_last(x):
    """`(images, restore)`: `x` as `(batch, h, w, c)` and the map back."""
    if len(x.shape) == 3:
        return ops.expand_dims(x, -1), lambda images: ops.squeeze(images, -1)
    if len(x.shape) != 4:
        raise ValueError(
            "Square needs image inputs (batch, height, width[, channels]). "
            f"Received: inputs of shape {tuple(x.shape)}"
        )
    if keras.config.image_data_format() == "channels_first":
        return (
            ops.transpose(x, (0, 2, 3, 1)),
            lambda images: ops.transpose(images, (0, 3, 1, 2)),
        )
    return x, lambda images: images
