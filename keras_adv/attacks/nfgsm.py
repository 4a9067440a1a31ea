"""N-FGSM: FGSM from strong noise, not projected onto the ball (training only)."""

from collections.abc import Callable

import keras
from keras import ops

from keras_adv import argument_validation as validation
from keras_adv.attacks.fgsm import FGSM


@keras.saving.register_keras_serializable(package="keras_adv")
class NFGSM(FGSM):
    """Noise-augmented FGSM: `clip(x + eta + step * sign(grad at x + eta))`.

    Paper: "Make Some Noise: Reliable and Efficient Single-Step Adversarial
    Training", de Jorge et al. 2022, arXiv:2202.01181. `eta` is uniform in
    the ball of radius `noise * epsilon` (the paper's `k = 2`), the step is
    `epsilon` (its `alpha`), and the result is **not** projected back onto
    the `epsilon` ball, only clipped to the input range: a perturbation may
    reach `(noise + 1) * epsilon`. The paper shows that this, and not a
    larger step, is what keeps single-step training from catastrophic
    overfitting at large budgets, at FGSM's cost (one gradient per step).

    It is a training attack: pass it to `AdversarialModel(attack=...)` or
    `keras-adv sweep --train-attack nfgsm`. Its examples leave the threat
    model, so do not measure robust accuracy with it (use PGD or AutoAttack).

    Args:
        epsilon: the budget the model is trained for, on the scale of the
            inputs.
        noise: the noise radius as a multiple of `epsilon` (`k`). Defaults
            to 2.0.
        step_size: the step in `norm`. Defaults to `None`: `epsilon`.
        norm: `"linf"` (the paper's) or `"l2"`. Defaults to `"linf"`.

    `clip`, `targeted`, `loss`, `from_logits` and `seed` are as in
    `keras_adv.attacks.Attack`.

    Examples:

        >>> import numpy as np, keras
        >>> from keras_adv.attacks import NFGSM
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x = np.full((64, 4), 0.5, dtype="float32")
        >>> x_adv = NFGSM(0.1, seed=0).generate(model, x, np.zeros(64, "int32"))
        >>> bool(np.abs(x_adv - x).max() > 0.1)  # beyond the ball: by design
        True
        >>> bool(np.abs(x_adv - x).max() <= 0.3 + 1e-6)  # within (k + 1) eps
        True
    """

    stays_in_threat_model = False

    def __init__(
        self,
        epsilon: float,
        noise: float = 2.0,
        step_size: float | None = None,
        norm: str = "linf",
        clip: tuple[float, float] | None = (0.0, 1.0),
        targeted: bool = False,
        loss: str | Callable | None = None,
        from_logits: bool | None = None,
        seed: int | None = None,
    ):
        super().__init__(
            epsilon,
            norm=norm,
            random_start=True,
            step_size=step_size,
            clip=clip,
            targeted=targeted,
            loss=loss,
            from_logits=from_logits,
            seed=seed,
        )
        self.noise = validation.check_epsilon(noise, "noise")

    def effective_step_size(self, epsilon=None):
        if self.step_size is not None:
            return self.step_size
        return self.epsilon if epsilon is None else epsilon

    def random_start_points(self, x, epsilon, count=1):
        """Uniform noise of radius `noise * epsilon` around `x`, clipped."""
        return super().random_start_points(x, self.noise * epsilon, count)

    def project(self, x, x_adv, epsilon):
        """Only the input range: N-FGSM does not project onto the ball."""
        del x, epsilon
        if self.clip is None:
            return x_adv
        return ops.clip(x_adv, self.clip[0], self.clip[1])

    def get_config(self):
        config = super().get_config()
        del config["random_start"]  # always: the noise is the method
        return {**config, "noise": self.noise}
