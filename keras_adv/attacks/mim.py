"""The momentum iterative method (MIM): PGD steps along an accumulated gradient."""

from collections.abc import Callable

import keras
from keras import ops

from keras_adv import argument_validation as validation
from keras_adv import backend
from keras_adv import norms
from keras_adv.attacks.attack import Attack


@keras.saving.register_keras_serializable(package="keras_adv")
class MIM(Attack):
    """Iterative steps along a momentum of L1-normalised gradients.

    Paper: "Boosting Adversarial Attacks with Momentum", Dong et al. 2018,
    arXiv:1710.06081. Each step accumulates `g = decay * g + grad / ||grad||_1`
    and moves `x_adv` by `step_size` along `sign(g)` (L-inf) or `g / ||g||_2`
    (L2), then projects onto the ball and `clip`. The momentum carries the
    attack past small local maxima of the loss where plain PGD oscillates.

    Threat model: `||x_adv - x|| <= epsilon` in `norm`, `x_adv` inside `clip`.

    Args:
        epsilon: the perturbation budget, on the scale of the inputs.
        norm: `"linf"`, `"l2"` or `"l1"` (see `Attack`). Defaults to `"linf"`.
        steps: number of gradient steps. Defaults to 10.
        decay: the momentum factor `mu`. Defaults to 1.0 (the paper's).
        step_size: the size of each step in `norm`. Defaults to `None`:
            `epsilon / steps` (the paper's, so the steps span the ball).
        random_start: start from a uniform draw in the ball instead of `x`.
            Defaults to `False` (the paper's).

    `clip`, `targeted`, `loss`, `from_logits` and `seed` are as in
    `keras_adv.attacks.Attack`.

    Examples:

        >>> import numpy as np, keras
        >>> from keras_adv.attacks import MIM
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x = np.random.rand(8, 4).astype("float32")
        >>> x_adv = MIM(epsilon=0.1, steps=5).generate(model, x, np.arange(8) % 3)
        >>> bool(np.abs(x_adv - x).max() <= 0.1 + 1e-6)
        True
    """

    rowwise = True

    def __init__(
        self,
        epsilon: float,
        norm: str = "linf",
        steps: int = 10,
        decay: float = 1.0,
        step_size: float | None = None,
        random_start: bool = False,
        clip: tuple[float, float] | None = (0.0, 1.0),
        targeted: bool = False,
        loss: str | Callable | None = None,
        from_logits: bool | None = None,
        seed: int | None = None,
    ):
        super().__init__(epsilon, norm, clip, targeted, loss, from_logits, seed)
        self.steps = validation.check_positive(steps, "steps", integer=True)
        self.decay = validation.check_epsilon(decay, "decay")
        self.step_size = validation.check_positive(
            step_size, "step_size", allow_none=True
        )
        self.random_start = validation.check_bool(random_start, "random_start")

    def perturb(self, forward, x, y, epsilon):
        objective = self.objective(forward, y)
        step_size = self.step_size or epsilon / self.steps
        axes = tuple(range(1, len(x.shape)))

        def total(x_adv):
            return ops.sum(objective(x_adv))

        def step(i, state):
            x_adv, momentum = state
            _, grad = backend.value_and_input_grad(total, x_adv)
            grad = ops.cast(grad, "float32")
            l1 = ops.maximum(ops.sum(ops.abs(grad), axis=axes, keepdims=True), 1e-12)
            momentum = self.decay * momentum + grad / l1
            direction = ops.cast(norms.normalize_grad(momentum, self.norm), x.dtype)
            return self.project(x, x_adv + step_size * direction, epsilon), momentum

        start = x
        if self.random_start:
            start = self.random_start_points(x, epsilon)[0]
        momentum = ops.zeros(ops.shape(x), "float32")
        x_adv, _ = ops.fori_loop(0, self.steps, step, (start, momentum))
        return x_adv

    def get_config(self):
        return {
            **super().get_config(),
            "steps": self.steps,
            "decay": self.decay,
            "step_size": self.step_size,
            "random_start": self.random_start,
        }
