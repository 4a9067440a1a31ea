"""APGD-T: APGD on the targeted DLR loss, towards the likeliest wrong classes."""

import keras
from keras import ops

from keras_adv import argument_validation as validation
from keras_adv import losses
from keras_adv.attacks.apgd import APGD
from keras_adv.attacks.apgd import succeeded
from keras_adv.attacks.targets import ranked_targets


@keras.saving.register_keras_serializable(package="keras_adv")
class APGDT(APGD):
    """Untargeted goal, targeted runs: APGD-T with the targeted DLR loss.

    Paper: "Reliable evaluation of adversarial robustness with an ensemble of
    diverse parameter-free attacks", Croce & Hein 2020, arXiv:2003.01690.
    For each of the `target_classes` classes the model ranks highest after
    the top one on the clean input, one APGD run (with `restarts` starts)
    maximises `losses.targeted_dlr` towards it. An example counts as broken
    when any run misclassifies it; it keeps the first such point, else the
    point of the last run. `y` holds true labels (the attack picks its own
    targets); the model needs at least four classes.

    Threat model: `||x_adv - x|| <= epsilon` in `norm`, `x_adv` inside `clip`.

    Args:
        epsilon: the perturbation budget, on the scale of the inputs.
        norm: `"linf"`, `"l2"` or `"l1"` (L1 as in `APGD`). Defaults to `"linf"`.
        steps: iterations per target class. Defaults to 100.
        target_classes: how many target classes to try (at most the number of
            classes minus one are used). Defaults to 9 (AutoAttack's).

    `restarts`, `rho`, `random_start`, `clip`, `from_logits` and `seed` are as in
    `APGD`.

    Examples:

        >>> import numpy as np, keras
        >>> from keras_adv.attacks import APGDT
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)])
        >>> x = np.random.rand(8, 4).astype("float32")
        >>> attack = APGDT(0.1, steps=10, target_classes=3, seed=0)
        >>> x_adv = attack.generate(model, x, np.arange(8) % 5)
        >>> bool(np.abs(x_adv - x).max() <= 0.1 + 1e-6)
        True
    """

    def __init__(
        self,
        epsilon: float,
        norm: str = "linf",
        steps: int = 100,
        target_classes: int = 9,
        restarts: int = 1,
        rho: float = 0.75,
        random_start: bool = True,
        clip: tuple[float, float] | None = (0.0, 1.0),
        from_logits: bool | None = None,
        seed: int | None = None,
    ):
        super().__init__(
            epsilon, norm, steps, restarts, rho, random_start, clip,
            targeted=False, loss=None, from_logits=from_logits, seed=seed,
        )  # fmt: skip
        self.target_classes = validation.check_positive(
            target_classes, "target_classes", integer=True
        )

    def perturb(self, forward, x, y, epsilon):
        targets, count = ranked_targets(
            forward(x), self.target_classes, 4, "APGDT", " (the targeted DLR loss)"
        )

        def success(outputs):
            return succeeded(outputs, y, targeted=False)

        def towards(t, draw=None):
            target = ops.take(targets, t, axis=1)

            def objective(outputs):
                return losses.targeted_dlr(y, target, outputs, self.from_logits)

            return self.best_of_restarts(forward, objective, success, x, epsilon, draw)

        shape = (-1,) + (1,) * (len(x.shape) - 1)

        def next_target(t, best, draw):
            # Losses towards different targets do not compare: success decides.
            x_best, ok, _ = best
            new_x, new_ok, new_loss = towards(t, draw)
            keep = ops.reshape(ok, shape)
            return ops.where(keep, x_best, new_x), ops.logical_or(ok, new_ok), new_loss

        first = towards(0)
        if count == 1:
            return first[0]
        return self.loop_drawing(1, count, next_target, first)[0]

    def get_config(self):
        config = super().get_config()
        for name in ("targeted", "loss", "eot_draws"):  # not APGD-T's arguments
            config.pop(name)
        return {**config, "target_classes": self.target_classes}
