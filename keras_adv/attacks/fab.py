"""FAB-T: the targeted fast adaptive boundary attack; minimal L-inf or L2 steps."""

import keras
from keras import ops

from keras_adv import argument_validation as validation
from keras_adv import backend
from keras_adv import losses
from keras_adv import norms
from keras_adv.attacks.attack import Attack
from keras_adv.attacks.targets import ranked_targets

# Guards divisions by a zero norm or a zero weight.
_TINY = 1e-12


def project_onto_hyperplane(points, w, c, low, high, norm="linf"):
    """The smallest `d` in `norm` with `w . d = c` and `low <= points + d <= high`.

    Per example (rows of `(batch, features)` tensors; `c` is `(batch,)`).
    Coordinate `i` moves towards the plane (sign `s_i`), up to its room `r_i`
    before the box edge, by `min(r_i, t u_i)` for a common `t`: `u_i = 1` for
    L-inf (every free coordinate moves by the same amount) and `u_i = |w_i|`
    for L2 (the KKT point, `d` along `w` clipped to the box). The gain
    `sum_i |w_i| min(r_i, t u_i)` is piecewise linear and increasing in `t`;
    the answer is the `t` where it reaches `|c|`, found between two sorted
    breakpoints `r_i / u_i`. Where the box cannot reach the plane, every
    coordinate moves to its edge.
    """
    if norm not in ("linf", "l2"):
        raise ValueError(f"Argument `norm` must be 'linf' or 'l2'. Received: {norm!r}")
    up = ops.expand_dims(c >= 0, -1)
    towards = ops.where(up, ops.sign(w), -ops.sign(w))
    room = ops.where(towards > 0, high - points, points - low)
    room = ops.where(towards == 0, 0.0, ops.maximum(room, 0.0))
    weight = ops.abs(w)
    rate = ops.ones_like(weight) if norm == "linf" else weight
    moving = rate > 0
    # a coordinate that cannot move (w_i = 0 under L2) breaks last, gaining 0
    breakpoint = ops.where(moving, room / ops.where(moving, rate, 1.0), 1e30)
    order = ops.argsort(breakpoint, axis=-1)
    breaks = ops.take_along_axis(breakpoint, order, axis=-1)
    weights = ops.take_along_axis(weight, order, axis=-1)
    rooms = ops.take_along_axis(room, order, axis=-1)
    rates = ops.take_along_axis(rate, order, axis=-1)
    before = ops.cumsum(weights * rooms, axis=-1) - weights * rooms  # sum over j < k
    after = ops.flip(ops.cumsum(ops.flip(weights * rates, -1), axis=-1), -1)  # j >= k
    gain = before + breaks * after  # at t = the k-th smallest breakpoint
    target = ops.expand_dims(ops.abs(c), -1)
    reached = gain >= target
    first = ops.argmax(ops.cast(reached, "int32"), axis=-1)[:, None]
    t = (target - ops.take_along_axis(before, first, -1)) / ops.maximum(
        ops.take_along_axis(after, first, -1), _TINY
    )
    reachable = ops.any(reached, axis=-1, keepdims=True)
    last = ops.max(ops.where(moving, breakpoint, 0.0), axis=-1, keepdims=True)
    t = ops.where(reachable, t, last)
    return towards * ops.minimum(room, ops.maximum(t, 0.0) * rate)


@keras.saving.register_keras_serializable(package="keras_adv")
class FABT(Attack):
    """Targeted FAB: the smallest L-inf or L2 perturbation into a target class.

    Paper: "Minimally distorted adversarial examples with a fast adaptive
    boundary attack", Croce & Hein 2020, arXiv:1907.02044; the targeted
    version and its defaults are AutoAttack's (arXiv:2003.01690). For each of
    the `target_classes` classes ranked highest after the predicted one, it
    linearises the boundary between the true class and the target at the
    current point, projects both the current point and the original input
    onto it (the smallest step in `norm` inside `clip`, `project_onto_hyperplane`),
    and moves to a mix of the two, weighted towards the original by `alpha`
    (at most `alpha_max`) and overshooting by `eta`. Each time the point is
    misclassified it is kept if it is the closest so far, then pulled back
    towards the input by `beta`.

    FAB minimises the perturbation instead of using a budget: an example
    counts as broken at `epsilon` when the smallest perturbation found is at
    most `epsilon` (then that point is returned; otherwise the input is).

    Args:
        epsilon: the budget the result is judged at, on the scale of the
            inputs.
        steps: iterations per target class. Defaults to 100.
        target_classes: how many target classes, the highest-ranked after
            the predicted one. Defaults to 9.
        alpha_max: the largest weight of the original input's projection.
            Defaults to 0.1.
        eta: the overshoot of each projection step. Defaults to 1.05.
        beta: the pull back towards the input after a success. Defaults to
            0.9.
        norm: `"linf"` or `"l2"` (AutoAttack's two; FAB's L1 projection is
            not implemented). Defaults to `"linf"`.

    `clip`, `from_logits` and `seed` are as in `keras_adv.attacks.Attack`.

    Examples:

        >>> import numpy as np, keras
        >>> from keras_adv.attacks import FABT
        >>> inputs = keras.Input((2,))
        >>> model = keras.Model(inputs, keras.layers.Dense(4)(inputs))
        >>> x = np.full((8, 2), 0.5, dtype="float32")
        >>> x_adv = FABT(0.5, steps=10).generate(model, x, np.zeros(8, "int32"))
        >>> bool(np.abs(x_adv - x).max() <= 0.5)
        True
    """

    def __init__(
        self,
        epsilon: float,
        steps: int = 100,
        target_classes: int = 9,
        alpha_max: float = 0.1,
        eta: float = 1.05,
        beta: float = 0.9,
        norm: str = "linf",
        clip: tuple[float, float] | None = (0.0, 1.0),
        from_logits: bool | None = None,
        seed: int | None = None,
    ):
        super().__init__(epsilon, norm, clip, False, None, from_logits, seed)
        if self.norm == "l1":
            raise ValueError(
                "FAB's L1 projection is not implemented; FABT attacks the L-inf "
                f"or L2 ball (norm='linf' or 'l2'). Received: norm={norm!r}"
            )
        self.steps = validation.check_positive(steps, "steps", integer=True)
        self.target_classes = validation.check_positive(
            target_classes, "target_classes", integer=True
        )
        self.alpha_max = validation.check_epsilon(alpha_max, "alpha_max")
        self.eta = validation.check_positive(eta, "eta")
        self.beta = validation.check_epsilon(beta, "beta")
        if self.alpha_max > 1 or self.beta > 1:
            raise ValueError(
                "Arguments `alpha_max` and `beta` must be in [0, 1]. Received: "
                f"alpha_max={alpha_max}, beta={beta}"
            )

    def perturb(self, forward, x, y, epsilon):
        clean = ops.cast(forward(x), "float32")
        targets, count = ranked_targets(clean, self.target_classes, 2, "FABT")
        classes = clean.shape[-1]
        one_hot = losses.label_targets(y, clean)
        shape = ops.shape(x)
        flat, _ = norms.flatten(x)
        low, high = self.clip if self.clip is not None else (-1e30, 1e30)
        best = flat
        best_size = ops.zeros_like(flat[:, 0]) + 1e30
        for rank in range(count):  # a few classes: unrolled
            target = ops.one_hot(ops.take(targets, rank, axis=1), classes)
            best, best_size = self._towards(
                forward, flat, shape, one_hot, target, best, best_size, low, high
            )
        within = ops.reshape(best_size <= epsilon, (-1, 1))
        x_adv = ops.reshape(ops.where(within, best, flat), shape)
        return self.project(x, x_adv, epsilon)

    def _towards(self, forward, x0, shape, one_hot, target, best, best_size, low, high):
        """FAB's iterations towards one target class, from the input."""

        def gap(flat_points):
            """Per example, log p_target - log p_true: >= 0 on the target's side."""
            outputs = forward(ops.reshape(flat_points, shape))
            scores = losses.log_probabilities(outputs, self.from_logits)
            scores = ops.cast(scores, "float32")
            values = ops.sum(scores * (target - one_hot), axis=-1)
            return ops.sum(values), (values, outputs)

        def step(i, carry):
            point, best, best_size = carry
            (_, (df, _)), w = backend.value_and_input_grad(gap, point, has_aux=True)
            w = ops.cast(w, point.dtype)
            # The plane df + w . (z - point) = 0, reached from point and from x0.
            d1 = project_onto_hyperplane(point, w, -df, low, high, self.norm)
            c0 = -df - ops.sum(w * (x0 - point), axis=-1)
            d0 = project_onto_hyperplane(x0, w, c0, low, high, self.norm)
            a1 = ops.maximum(norms.lp_norm(d1, self.norm), 1e-8)[:, None]
            a0 = ops.maximum(norms.lp_norm(d0, self.norm), 1e-8)[:, None]
            alpha = ops.clip(a1 / (a1 + a0), 0.0, self.alpha_max)
            point = (point + self.eta * d1) * (1 - alpha) + (x0 + self.eta * d0) * alpha
            point = ops.clip(point, low, high)
            outputs = forward(ops.reshape(point, shape))
            wrong = ops.not_equal(
                ops.argmax(outputs, axis=-1), ops.argmax(one_hot, axis=-1)
            )
            size = norms.lp_norm(point - x0, self.norm)
            closer = ops.logical_and(wrong, size < best_size)
            best = ops.where(closer[:, None], point, best)
            best_size = ops.where(closer, size, best_size)
            pulled = x0 + (point - x0) * self.beta
            point = ops.where(wrong[:, None], pulled, point)
            return point, best, best_size

        _, best, best_size = ops.fori_loop(0, self.steps, step, (x0, best, best_size))
        return best, best_size

    def get_config(self):
        config = super().get_config()
        for name in ("targeted", "loss"):
            config.pop(name, None)
        return {
            **config,
            "steps": self.steps,
            "target_classes": self.target_classes,
            "alpha_max": self.alpha_max,
            "eta": self.eta,
            "beta": self.beta,
        }
