"""The fast gradient sign method (FGSM) and its L2 form (FGM)."""

from collections.abc import Callable

import keras

from keras_adv.attacks.pgd import PGD


@keras.saving.register_keras_serializable(package="keras_adv")
class FGSM(PGD):
    """One gradient step of size `epsilon`: `clip(x + eps * sign(grad))`.

    Paper: "Explaining and Harnessing Adversarial Examples", Goodfellow et
    al. 2014, arXiv:1412.6572. With `norm="l2"` the step follows the
    normalised gradient (the fast gradient method, FGM, Miyato et al. 2016).
    With `random_start=True` it is FGSM-RS of "Fast is better than free",
    Wong et al. 2020, arXiv:2001.03994: a uniform start in the ball, then
    one step of `1.25 * epsilon` projected back onto the ball.

    Threat model: `||x_adv - x|| <= epsilon` in `norm`, `x_adv` inside `clip`.
    This is PGD with one step, so it shares its code and its guarantees.

    Args:
        epsilon: the perturbation budget, on the scale of the inputs.
        norm: `"linf"`, `"l2"` or `"l1"` (see `Attack`). Defaults to `"linf"`.
        random_start: start from a uniform draw in the ball (FGSM-RS).
            Defaults to `False`.
        step_size: the step in `norm`. Defaults to `None`: `epsilon`, or
            `1.25 * epsilon` with a random start.

    `clip`, `targeted`, `loss`, `from_logits` and `seed` are as in
    `keras_adv.attacks.Attack`.

    Examples:

        >>> import numpy as np, keras
        >>> from keras_adv.attacks import FGSM
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x = np.full((2, 4), 0.5, dtype="float32")
        >>> x_adv = FGSM(epsilon=0.1).generate(model, x, np.array([0, 1]))
        >>> np.allclose(np.abs(x_adv - x), 0.1)  # every pixel moves by epsilon
        True
    """

    def __init__(
        self,
        epsilon: float,
        norm: str = "linf",
        random_start: bool = False,
        step_size: float | None = None,
        clip: tuple[float, float] | None = (0.0, 1.0),
        targeted: bool = False,
        loss: str | Callable | None = None,
        from_logits: bool | None = None,
        seed: int | None = None,
    ):
        super().__init__(
            epsilon,
            norm=norm,
            steps=1,
            step_size=step_size,
            random_start=random_start,
            restarts=1,
            clip=clip,
            targeted=targeted,
            loss=loss,
            from_logits=from_logits,
            seed=seed,
        )

    def effective_step_size(self, epsilon=None):
        if self.step_size is not None:
            return self.step_size
        epsilon = self.epsilon if epsilon is None else epsilon
        return 1.25 * epsilon if self.random_start else epsilon

    def get_config(self):
        config = super().get_config()
        del config["steps"], config["restarts"]
        return config
