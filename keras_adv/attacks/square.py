"""The Square attack: random search over square patches, no gradients."""

from collections.abc import Callable

import keras
import numpy as np
from keras import ops
from keras import random

from keras_adv import argument_validation as validation
from keras_adv import losses
from keras_adv import norms
from keras_adv.attacks.apgd import succeeded
from keras_adv.attacks.attack import Attack

# Guards divisions by a zero norm.
_TINY = 1e-12

# Iteration (rescaled to 10,000 queries) after which the patch area halves.
_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


@keras.saving.register_keras_serializable(package="keras_adv")
class Square(Attack):
    """Score-based random search: one square window re-drawn per query.

    Paper: "Square Attack: a query-efficient black-box adversarial attack via
    random search", Andriushchenko et al. 2020, arXiv:1912.00049, with
    AutoAttack's defaults. Each query changes one square window of an example
    (side set by `p_init`, shrinking on the paper's schedule) and keeps the
    change if the margin `z_y - max_{i != y} z_i` falls. An example stops
    changing once misclassified. It calls the model only forwards (no
    gradients), so gradient masking does not stop it: the reason to run it.

    - L-inf: starts from vertical stripes of `+-epsilon`; a query sets the
      window to `+-epsilon` per channel.
    - L2: starts from a grid of the paper's window patterns (concentric
      squares weighted `1/(k+1)^2`, positive in one half and negative in the
      other, randomly transposed, a random sign per channel) scaled to
      `||delta||_2 = epsilon`; a query adds a fresh pattern to one window,
      moves that window's mass and a second window's into it (the second is
      zeroed), and rescales to `epsilon`.

    Threat model: `||x_adv - x|| <= epsilon` in `norm`, `x_adv` inside `clip`.
    Inputs are images `(batch, height, width, channels)` (or channels first,
    by `keras.config.image_data_format()`) or `(batch, height, width)`, at
    least 2x2 (3x3 for L2).

    Args:
        epsilon: the perturbation budget, on the scale of the inputs.
        queries: model evaluations per example, the first being the start.
            Defaults to 5000 (AutoAttack's).
        p_init: the share of the image the first windows cover. Defaults to
            0.8 (AutoAttack's).
        loss: `None` for the margin (a target's margin when `targeted`), or
            an attack loss to raise (see `keras_adv.attacks.Attack`).
            Defaults to `None`.
        norm: `"linf"` or `"l2"`. Defaults to `"linf"`.

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
        norm: str = "linf",
    ):
        super().__init__(epsilon, norm, clip, targeted, loss, from_logits, seed)
        if self.norm == "l1":
            raise ValueError(
                "Square attacks the L-inf or L2 ball (norm='linf' or 'l2'), "
                f"not L1. Received: norm={norm!r}"
            )
        self.queries = validation.check_positive(queries, "queries", integer=True)
        self.p_init = validation.check_positive(p_init, "p_init")
        if self.p_init > 1:
            raise ValueError(
                f"Argument `p_init` must be in (0, 1]. Received: p_init={p_init}"
            )

    def perturb(self, forward, x, y, epsilon):
        images, restore = _channels_last(x)
        height, width, channels = images.shape[1:]
        smallest = 2 if self.norm == "linf" else 3
        if min(height, width) < smallest:
            raise ValueError(
                f"Square ({self.norm}) needs images at least {smallest}x{smallest}. "
                f"Received: inputs of shape {tuple(x.shape)}"
            )
        objective = self._objective(y)

        def evaluate(candidate):
            # No gradients: stop_gradient also keeps eager backends (torch)
            # from chaining every query's graph onto the kept values.
            outputs = ops.stop_gradient(forward(restore(candidate)))
            return objective(outputs), succeeded(outputs, y, self.targeted)

        grid = _Grid(images)
        if self.norm == "linf":
            best = self._linf_start(grid, epsilon)
            propose = self._linf_candidate
        else:
            best = self._l2_start(grid, epsilon)
            propose = self._l2_candidate
        value, ok = evaluate(best)

        def query(i, state, draw):
            best, value, ok = state
            candidate = propose(i, grid, best, epsilon, draw)
            new_value, new_ok = evaluate(candidate)
            take = ops.logical_and(ops.logical_not(ok), new_value > value)
            take = ops.logical_or(take, ops.logical_and(ops.logical_not(ok), new_ok))
            best = ops.where(ops.reshape(take, (-1, 1, 1, 1)), candidate, best)
            value = ops.where(take, new_value, value)
            return best, value, ops.logical_or(ok, new_ok)

        if self.queries > 1:
            best, _, _ = self.loop_drawing(1, self.queries, query, (best, value, ok))
        return restore(best)

    def _linf_start(self, grid, epsilon):
        """Vertical stripes of `+-epsilon`, one sign per column and channel."""
        stripes = self._signs((grid.batch, 1, grid.width, grid.channels))
        return self._clip(grid.images + epsilon * ops.cast(stripes, grid.dtype))

    def _linf_candidate(self, i, grid, best, epsilon, draw):
        """`best` with one window set to `+-epsilon` per channel."""
        side = self._side(i, grid.height, grid.width)
        top, left, signs = draw(
            lambda: (
                self._offset(grid.batch, grid.height - side + 1),
                self._offset(grid.batch, grid.width - side + 1),
                self._signs((grid.batch, 1, 1, grid.channels)),
            )
        )
        inside = grid.window(top, left, side)
        signs = ops.cast(signs, grid.dtype)
        return self._clip(ops.where(inside, grid.images + epsilon * signs, best))

    def _l2_start(self, grid, epsilon):
        """The paper's grid of window patterns, scaled to `||delta||_2 = epsilon`."""
        side = max(min(grid.height, grid.width) // 5, 1)
        offset = (grid.height - 5 * side) // 2
        blocks = (grid.height // side, grid.width // side)
        rows = ops.arange(grid.height, dtype="float32")[:, None]
        cols = ops.arange(grid.width, dtype="float32")[None, :]
        block_row = ops.floor((rows - offset) / side)
        block_col = ops.floor((cols - offset) / side)
        inside = (rows >= offset) & (block_row < blocks[0])
        inside = inside & (cols >= offset) & (block_col < blocks[1])
        a = rows - offset - block_row * side
        b = cols - offset - block_col * side
        size = min(grid.height, grid.width)
        pattern = ops.where(inside, _pattern(a, b, side, size), 0.0)
        transposed = ops.where(inside, _pattern(b, a, side, size), 0.0)
        shape = (grid.batch, blocks[0], blocks[1])
        flip = _per_block(self._signs(shape + (1,)) > 0, side, offset, grid)
        signs = _per_block(self._signs(shape + (grid.channels,)), side, offset, grid)
        flat = ops.where(flip, transposed[None, :, :, None], pattern[None, :, :, None])
        return self._scaled(grid, flat * signs, epsilon)

    def _l2_candidate(self, i, grid, best, epsilon, draw):
        """`best` with a fresh pattern in one window and a second window emptied."""
        side = self._l2_side(i, grid.height, grid.width)
        top, left, top2, left2, signs, flip = draw(
            lambda: (
                self._offset(grid.batch, grid.height - side + 1),
                self._offset(grid.batch, grid.width - side + 1),
                self._offset(grid.batch, grid.height - side + 1),
                self._offset(grid.batch, grid.width - side + 1),
                self._signs((grid.batch, 1, 1, grid.channels)),
                self._signs((grid.batch, 1, 1, 1)) > 0,
            )
        )
        delta = ops.cast(best - grid.images, "float32")
        first = grid.window(top, left, side)
        second = grid.window(top2, left2, side)
        kept = ops.where(first, delta, 0.0)
        window_norms = ops.sqrt(ops.sum(kept**2, axis=(1, 2), keepdims=True))
        total = _l2(delta)
        in_windows = _l2(ops.where(ops.logical_or(first, second), delta, 0.0))
        a = grid.rows - top
        b = grid.cols - left
        size = min(grid.height, grid.width)
        fresh = _pattern(ops.where(flip, b, a), ops.where(flip, a, b), side, size)
        fresh = ops.where(first, fresh, 0.0) * signs
        new = fresh + kept / (_TINY + window_norms)
        new_norms = ops.sqrt(ops.sum(new**2, axis=(1, 2), keepdims=True))
        # the window's new mass: what the two windows held plus what the
        # budget has left, split evenly over the channels (the reference's)
        mass = ops.maximum(epsilon**2 - total**2, 0.0) / grid.channels
        new = new / (_TINY + new_norms) * ops.sqrt(mass + in_windows**2)
        delta = ops.where(first, new, ops.where(second, 0.0, delta))
        return self._scaled(grid, delta, epsilon)

    def _scaled(self, grid, delta, epsilon):
        """`images + epsilon * delta / ||delta||_2`, inside `clip`."""
        unit = delta / (_TINY + _l2(delta))
        return self._clip(grid.images + ops.cast(epsilon * unit, grid.dtype))

    def _objective(self, y):
        if self.loss is not None:
            return self.output_objective(y)
        sign = 1.0 if self.targeted else -1.0  # targeted: raise the target's margin
        return lambda outputs: sign * losses.margin(y, outputs, self.from_logits)

    def _p(self, i):
        """`p_init`, halved at each of the paper's iterations (rescaled) passed."""
        progress = ops.floor(ops.cast(i, "float32") * (10000.0 / self.queries))
        halvings = sum(ops.cast(progress > t, "float32") for t in _HALVINGS)
        return self.p_init / ops.power(2.0, halvings)

    def _side(self, i, height, width):
        """The L-inf window side at query `i`: `sqrt(p * h * w)`, at least 1."""
        side = ops.round(ops.sqrt(self._p(i) * height * width))
        return ops.clip(side, 1.0, min(height, width) - 1.0)

    def _l2_side(self, i, height, width):
        """The L2 window side at query `i`: `sqrt(p * h * w)`, odd, at least 3."""
        side = ops.maximum(ops.round(ops.sqrt(self._p(i) * height * width)), 3.0)
        side = side + ops.cast(ops.mod(side, 2.0) == 0, "float32")
        return ops.minimum(side, float(min(height, width)))

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
        return {**super().get_config(), "queries": self.queries, "p_init": self.p_init}


class _Grid:
    """Channels-last images and the pixel coordinates windows are drawn on."""

    def __init__(self, images):
        self.images = images
        self.dtype = images.dtype
        self.batch = ops.shape(images)[0]
        self.height, self.width, self.channels = images.shape[1:]
        self.rows = ops.reshape(ops.arange(self.height, dtype="float32"), (1, -1, 1, 1))
        self.cols = ops.reshape(ops.arange(self.width, dtype="float32"), (1, 1, -1, 1))

    def window(self, top, left, side):
        """Per example, whether a pixel is in the `side` window at `(top, left)`."""
        return ops.logical_and(
            ops.logical_and(self.rows >= top, self.rows < top + side),
            ops.logical_and(self.cols >= left, self.cols < left + side),
        )


def _pattern(a, b, side, size):
    """The paper's L2 window pattern at local coordinates `(a, b)` of a `side` window.

    The top `side // 2` rows hold concentric rectangles around their centre,
    ring `k` adding `1/(k+1)^2` (a pixel at Chebyshev distance `d` from the
    centre holds `sum_{k=d}^{side//2} 1/(k+1)^2`); the bottom rows hold the
    same, negated. Each half is scaled to unit L2 norm and the window then
    to unit norm. `a` and `b` broadcast; `side` is a number or a scalar
    tensor at most `size`, a Python int (the norms are summed on a
    `size x size` grid, so `side` may change from query to query).
    """
    sums = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, size + 2) ** 2)])
    sums = ops.convert_to_tensor(sums.astype("float32"))
    half = ops.floor(side / 2)

    def raw(a, b):
        top = a < half
        local = ops.where(top, a, a - half)
        rows = ops.where(top, half, side - half)
        distance = ops.maximum(ops.abs(local - ops.floor(rows / 2)), ops.abs(b - half))
        # sum_{k=d}^{K} 1/(k+1)^2 with K = side // 2, from a table of partial sums
        value = ops.take(sums, ops.cast(half + 1, "int32")) - ops.take(
            sums, ops.cast(distance, "int32")
        )
        inside = (a >= 0) & (a < side) & (b >= 0) & (b < side)
        return ops.where(inside, ops.where(top, value, -value), 0.0)

    local = raw(
        ops.arange(size, dtype="float32")[:, None],
        ops.arange(size, dtype="float32")[None, :],
    )
    top_norm = ops.sqrt(ops.sum(ops.maximum(local, 0.0) ** 2))
    bottom_norm = ops.sqrt(ops.sum(ops.minimum(local, 0.0) ** 2))
    value = raw(ops.cast(a, "float32"), ops.cast(b, "float32"))
    value = ops.where(
        value > 0,
        value / ops.maximum(top_norm, _TINY),
        value / ops.maximum(bottom_norm, _TINY),
    )
    halves = ops.cast(top_norm > 0, "float32") + ops.cast(bottom_norm > 0, "float32")
    return value / ops.sqrt(halves)


def _l2(delta):
    """`norms.lp_norm(delta, "l2")`, shaped `(batch, 1, 1, 1)` for images."""
    return ops.reshape(norms.lp_norm(delta, "l2"), (-1, 1, 1, 1))


def _per_block(values, side, offset, grid):
    """`(batch, blocks, blocks, k)` values spread over their blocks of the image."""
    values = ops.repeat(ops.repeat(values, side, axis=1), side, axis=2)
    rows, cols = values.shape[1], values.shape[2]
    values = ops.pad(
        values,
        [
            [0, 0],
            [offset, max(grid.height - offset - rows, 0)],
            [offset, max(grid.width - offset - cols, 0)],
            [0, 0],
        ],
    )
    return values[:, : grid.height, : grid.width, :]


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
