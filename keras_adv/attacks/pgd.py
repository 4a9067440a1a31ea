"""Projected gradient descent (PGD), the iterative first-order attack."""

from collections.abc import Callable

import keras
from keras import ops

from keras_adv import argument_validation as validation
from keras_adv import backend
from keras_adv import norms
from keras_adv.attacks.attack import Attack


@keras.saving.register_keras_serializable(package="keras_adv")
class PGD(Attack):
    """Projected gradient descent on the loss, within an L-inf or L2 ball.

    Paper: "Towards Deep Learning Models Resistant to Adversarial Attacks",
    Madry et al. 2017, arXiv:1706.06083. Without a random start it is the
    basic iterative method (BIM) of Kurakin et al. 2016, arXiv:1607.02533.

    Threat model: `||x_adv - x|| <= epsilon` in the chosen `norm`, and
    `x_adv` inside `clip`. Each step moves along the steepest-ascent
    direction of the loss of the true class (`sign` of the gradient for
    L-inf, the normalised gradient for L2), then projects back onto the ball
    and the valid range. With `restarts > 1`, each example keeps the result
    of the restart with the highest final loss.

    Args:
        epsilon: the perturbation budget, on the scale of the inputs.
        norm: `"linf"`, `"l2"` or `"l1"` (see `Attack`). Defaults to `"linf"`.
        steps: number of gradient steps (run in a `keras.ops.fori_loop`, so
            compile time does not grow with it; on JAX up to 10 steps are
            unrolled, which XLA runs faster). Defaults to 10.
        step_size: the size of each step in `norm`. Defaults to `None`:
            `2.5 * epsilon / steps` (Madry et al.).
        random_start: start from a uniform draw in the ball instead of `x`.
            Defaults to `True`.
        restarts: independent random starts; each example keeps its worst
            case. Needs `random_start=True` when above 1. Defaults to 1.

    `clip`, `targeted`, `loss`, `from_logits` and `seed` are as in
    `keras_adv.attacks.Attack`.

    Examples:

        >>> import numpy as np, keras
        >>> from keras_adv.attacks import PGD
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x = np.random.rand(8, 4).astype("float32")
        >>> y = np.arange(8) % 3
        >>> x_adv = PGD(epsilon=0.1, steps=5, seed=0).generate(model, x, y)
        >>> bool(np.abs(x_adv - x).max() <= 0.1 + 1e-6)
        True
    """

    def __init__(
        self,
        epsilon: float,
        norm: str = "linf",
        steps: int = 10,
        step_size: float | None = None,
        random_start: bool = True,
        restarts: int = 1,
        clip: tuple[float, float] | None = (0.0, 1.0),
        targeted: bool = False,
        loss: str | Callable | None = None,
        from_logits: bool | None = None,
        seed: int | None = None,
    ):
        super().__init__(epsilon, norm, clip, targeted, loss, from_logits, seed)
        self.steps = validation.check_positive(steps, "steps", integer=True)
        self.step_size = validation.check_positive(
            step_size, "step_size", allow_none=True
        )
        self.random_start = validation.check_bool(random_start, "random_start")
        self.restarts = validation.check_positive(restarts, "restarts", integer=True)
        if self.restarts > 1 and not self.random_start:
            raise ValueError(
                "Argument `restarts` above 1 needs `random_start=True` (without "
                "a random start every restart is the same). "
                f"Received: restarts={restarts}"
            )

    def effective_step_size(self, epsilon=None):
        """The step size in use: `step_size`, or `2.5 * epsilon / steps`."""
        if self.step_size is not None:
            return self.step_size
        epsilon = self.epsilon if epsilon is None else epsilon
        return 2.5 * epsilon / self.steps

    @property
    def rowwise(self):
        return self.restarts == 1  # restarts keep each example's best

    def perturb_and_predict(self, forward, x, y, epsilon):
        # A subclass with its own `perturb` is another algorithm: run it.
        if self.random_start or type(self).perturb is not PGD.perturb:
            return super().perturb_and_predict(forward, x, y, epsilon)
        # The first step's pass is at `x`: its outputs are the clean ones.
        of_outputs = self.output_objective(y)

        def total(inputs):
            outputs = forward(inputs)
            return ops.sum(of_outputs(outputs)), outputs

        (_, outputs), grad = backend.value_and_input_grad(total, x, has_aux=True)
        x_adv = self.ascent_step(x, x, grad, epsilon)
        if self.steps > 1:
            objective = self.objective(forward, y)
            x_adv = self._ascend(objective, x, x_adv, epsilon, self.steps - 1)
        return x_adv, outputs

    def perturb(self, forward, x, y, epsilon):
        objective = self.objective(forward, y)
        if self.restarts == 1:
            start = x
            if self.random_start:
                start = self.random_start_points(x, epsilon)[0]
            return self._ascend(objective, x, start, epsilon)
        starts = self.random_start_points(x, epsilon, self.restarts)
        best = self._ascend(objective, x, starts[0], epsilon)
        best_value = objective(best)
        shape = (-1,) + (1,) * (len(x.shape) - 1)

        def restart(r, state):
            best, best_value = state
            candidate = self._ascend(objective, x, ops.take(starts, r, axis=0), epsilon)
            value = objective(candidate)
            better = ops.reshape(value > best_value, shape)
            return ops.where(better, candidate, best), ops.maximum(value, best_value)

        best, _ = ops.fori_loop(1, self.restarts, restart, (best, best_value))
        return best

    def trajectory(self, forward, x, y, epsilon=None):
        """The points the ascent visits: its start and each step but the last.

        `steps` points, stacked on a new first axis: `x_0` (the start, a
        random one with `random_start`) and `x_t`, `t < steps`, each one
        ascent step from the last. FreeLB (Zhu et al. 2020) averages the
        weight gradients at exactly these points. Unrolled (a Python loop):
        meant for the few steps FreeLB takes. Behind `stop_gradient`.
        """
        x = ops.convert_to_tensor(x)
        epsilon = self.epsilon if epsilon is None else epsilon
        objective = self.objective(forward, ops.convert_to_tensor(y))
        point = x
        if self.random_start:
            point = self.random_start_points(x, epsilon)[0]
        points = [point]
        for _ in range(self.steps - 1):
            _, grad = backend.value_and_input_grad(
                lambda x_adv: ops.sum(objective(x_adv)), point
            )
            point = self.ascent_step(x, point, grad, epsilon)
            points.append(point)
        return ops.stop_gradient(ops.stack(points))

    def ascent_step(self, x, x_adv, grad, epsilon):
        """One step from `x_adv` along `grad` (the loss's input gradient there).

        Exposed so that a training step which already has the gradient (the
        clean backward pass of FGSM-mixed) can take the step itself.
        """
        if self.norm == "l1" and self.clip is not None:
            # A sparse step spent on a coordinate at the edge of `clip`,
            # pushing outwards, would be clipped away: only movable ones.
            movable = ops.where(grad > 0, x_adv < self.clip[1], x_adv > self.clip[0])
            grad = grad * ops.cast(movable, grad.dtype)
        direction = ops.cast(norms.normalize_grad(grad, self.norm), x_adv.dtype)
        step_size = self.effective_step_size(epsilon)
        return self.project(x, x_adv + step_size * direction, epsilon)

    def _ascend(self, objective, x, start, epsilon, steps=None):
        steps = self.steps if steps is None else steps

        def total(x_adv):
            return ops.sum(objective(x_adv))

        def step(i, x_adv):
            _, grad = backend.value_and_input_grad(total, x_adv)
            return self.ascent_step(x, x_adv, grad, epsilon)

        if steps <= max(1, backend.MAX_UNROLLED_STEPS):
            for i in range(steps):
                start = step(i, start)
            return start
        return ops.fori_loop(0, steps, step, start)

    def get_config(self):
        return {
            **super().get_config(),
            "steps": self.steps,
            "step_size": self.step_size,
            "random_start": self.random_start,
            "restarts": self.restarts,
        }
