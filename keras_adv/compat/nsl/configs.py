"""NSL's adversarial-regularization configs, and the keras-adv attack each one means.

The fields and defaults are those of `neural_structured_learning.configs`
(NSL 1.4): `make_adv_reg_config(multiplier=0.2, adv_step_size=0.001,
adv_grad_norm="l2", ...)`. NSL's neighbour is `x + adv_step_size * d`, with
`d` the steepest-ascent direction of the labeled loss in `adv_grad_norm`
(the sign of the gradient for `"infinity"`, the gradient over its L2 norm
for `"l2"`, the norm taken over all perturbed features of an example); with
`pgd_iterations > 1` that step repeats, projected onto the `pgd_epsilon`
ball. That is keras-adv's `FGSM` and `PGD`, which `attack_of` builds.
"""

import dataclasses
import enum

from keras_adv import argument_validation as validation
from keras_adv.attacks.attack import Attack
from keras_adv.attacks.fgsm import FGSM
from keras_adv.attacks.pgd import PGD


class NormType(enum.Enum):
    """NSL's norm names; `NormType("l2")` converts a string as NSL does."""

    L1 = "l1"
    L2 = "l2"
    INFINITY = "infinity"

    @classmethod
    def all(cls):
        return list(cls)


_NORMS = {NormType.L2: "l2", NormType.INFINITY: "linf"}


def _norm_type(value):
    try:
        return NormType(value.value if isinstance(value, NormType) else value)
    except ValueError:
        raise ValueError(
            f"Argument `adv_grad_norm` must be one of 'l2', 'infinity' (or "
            f"nsl.configs.NormType). Received: adv_grad_norm={value!r}"
        ) from None


@dataclasses.dataclass(frozen=True)
class AdvNeighborConfig:
    """How NSL generates adversarial neighbours; NSL's fields and defaults."""

    feature_mask: object = None
    adv_step_size: float = 0.001
    adv_grad_norm: NormType = NormType.L2
    clip_value_min: float | None = None
    clip_value_max: float | None = None
    pgd_iterations: int = 1
    pgd_epsilon: float | None = None
    random_init: bool = False

    def __post_init__(self):
        object.__setattr__(self, "adv_grad_norm", _norm_type(self.adv_grad_norm))


@dataclasses.dataclass(frozen=True)
class AdvRegConfig:
    """NSL's adversarial regularization: the loss weight and the neighbours."""

    multiplier: float = 0.2
    adv_neighbor_config: AdvNeighborConfig = dataclasses.field(
        default_factory=AdvNeighborConfig
    )


def make_adv_reg_config(
    multiplier: float = 0.2,
    feature_mask: object = None,
    adv_step_size: float = 0.001,
    adv_grad_norm: "str | NormType" = "l2",
    clip_value_min: float | None = None,
    clip_value_max: float | None = None,
    pgd_iterations: int = 1,
    pgd_epsilon: float | None = None,
    random_init: bool = False,
) -> AdvRegConfig:
    """An `AdvRegConfig`, as `nsl.configs.make_adv_reg_config` makes it.

    Checked here, in one line each, rather than at the first training step:
    the values must give a keras-adv attack (`attack_of`).

    Args:
        multiplier: weight of the adversarial loss. Defaults to 0.2.
        feature_mask: not supported (NSL's mask on the gradient); choose the
            perturbed inputs with `AdversarialModel(perturb=...)` instead.
        adv_step_size: the step (the budget of a one-step attack).
            Defaults to 0.001.
        adv_grad_norm: `"l2"` or `"infinity"`. Defaults to `"l2"`.
        clip_value_min: lower bound of the perturbed features, with
            `clip_value_max`. Defaults to `None` (unbounded).
        clip_value_max: upper bound. Defaults to `None`.
        pgd_iterations: steps. Defaults to 1.
        pgd_epsilon: radius of the ball the steps are projected onto.
            Defaults to `None`: no projection.
        random_init: start the steps at a uniform draw in the
            `pgd_epsilon` ball. Defaults to `False`.
    """
    config = AdvRegConfig(
        multiplier=multiplier,
        adv_neighbor_config=AdvNeighborConfig(
            feature_mask=feature_mask,
            adv_step_size=adv_step_size,
            adv_grad_norm=adv_grad_norm,
            clip_value_min=clip_value_min,
            clip_value_max=clip_value_max,
            pgd_iterations=pgd_iterations,
            pgd_epsilon=pgd_epsilon,
            random_init=random_init,
        ),
    )
    attack_of(config.adv_neighbor_config)
    return config


def attack_of(config: AdvNeighborConfig) -> Attack:
    """The keras-adv attack that generates NSL's neighbours for `config`.

    One step without a ball is `FGSM(adv_step_size)`; more steps are
    `PGD(steps=pgd_iterations, step_size=adv_step_size)` in the
    `pgd_epsilon` ball. NSL does not project when `pgd_epsilon` is `None`;
    `K` steps of size `s` then stay within `K * s` in either norm, so the
    ball of that radius projects nothing and is used.
    """
    if not isinstance(config, AdvNeighborConfig):
        raise ValueError(
            "Argument `adv_neighbor_config` must be an AdvNeighborConfig (from "
            "keras_adv.compat.nsl.make_adv_reg_config). "
            f"Received: {config!r}"
        )
    if config.feature_mask is not None:
        raise ValueError(
            "Argument `feature_mask` is not supported: keras-adv perturbs whole "
            "inputs. Leave it None and choose the inputs with "
            "keras_adv.AdversarialModel(perturb=[names]). "
            "Received: feature_mask=<a mask>"
        )
    if config.adv_grad_norm not in _NORMS:
        raise ValueError(
            "Argument `adv_grad_norm='l1'` is not supported: NSL's L1 step puts "
            "the whole step on the largest gradient coordinates, keras-adv's "
            "L1 attacks (keras_adv.PGD(norm='l1')) spread it; use 'l2' or "
            "'infinity'. Received: adv_grad_norm='l1'"
        )
    low, high = config.clip_value_min, config.clip_value_max
    if (low is None) != (high is None):
        raise ValueError(
            "Arguments `clip_value_min` and `clip_value_max` must be given "
            "together (keras-adv clips to a range), e.g. 0.0 and 1.0 for "
            f"images. Received: clip_value_min={low!r}, clip_value_max={high!r}"
        )
    clip = None if low is None else (low, high)
    step_size = validation.check_positive(config.adv_step_size, "adv_step_size")
    epsilon = validation.check_positive(
        config.pgd_epsilon, "pgd_epsilon", allow_none=True
    )
    steps = validation.check_positive(
        config.pgd_iterations, "pgd_iterations", integer=True
    )
    random_init = validation.check_bool(config.random_init, "random_init")
    norm = _NORMS[config.adv_grad_norm]
    if random_init and epsilon is None:
        raise ValueError(
            "Argument `random_init=True` draws the start in the pgd_epsilon ball: "
            "set pgd_epsilon too. Received: pgd_epsilon=None"
        )
    if steps == 1 and epsilon is None:
        return FGSM(step_size, norm=norm, clip=clip)
    return PGD(
        steps * step_size if epsilon is None else epsilon,
        norm=norm,
        steps=steps,
        step_size=step_size,
        random_start=random_init,
        clip=clip,
    )
