"""Attack names: `get("pgd20")` builds an attack, `name_of(attack)` names one.

One scheme for the whole library: the name a user types on the command line
or in a sweep's config is the name `evaluate_robustness`, the sweep's
results and the report show. `get(name_of(attack))` rebuilds the attack's
kind, step count and norm (other hyperparameters keep their defaults).
"""

import inspect
import re

from keras_adv.attacks.apgd import APGD
from keras_adv.attacks.apgd_t import APGDT
from keras_adv.attacks.attack import Attack
from keras_adv.attacks.fab import FABT
from keras_adv.attacks.fgsm import FGSM
from keras_adv.attacks.mim import MIM
from keras_adv.attacks.nfgsm import NFGSM
from keras_adv.attacks.pgd import PGD
from keras_adv.attacks.square import Square

WORST_CASE = "worst case"  # the row of the worst case over a set of attacks

GRAMMAR = (
    "'fgsm', 'nfgsm' (training only), 'pgd<steps>' (e.g. 'pgd20'), "
    "'mim<steps>', 'apgd-ce[<steps>]', 'apgd-dlr[<steps>]', 'apgd-t[<steps>]', "
    "'fab-t[<steps>]' (100 steps by default) or "
    "'square[<queries>]' (5000 by default), then '-eot<draws>' for apgd-ce "
    "and apgd-dlr on models random at inference (e.g. 'apgd-ce-eot20'), then "
    "'-l2' or '-l1' for the L2 or L1 ball instead of L-inf ('-l1' not for "
    "fab-t and square)"
)

_PATTERN = re.compile(
    r"(n-?fgsm|fgsm|pgd|mim|apgd-ce|apgd-dlr|apgd-t|fab-t|square)-?(\d*)"
    r"(?:-eot(\d+))?(?:-(linf|l2|l1))?"
)


def get(name: "str | Attack", epsilon: float = 0.0, seed: int | None = None) -> Attack:
    """The attack `name` names, at budget `epsilon`.

    Args:
        name: an attack name (see `GRAMMAR`; case and a hyphen before the
            count do not matter: `"PGD-20"` is `"pgd20"`), or an `Attack`,
            returned as it is.
        epsilon: the budget. Defaults to 0 (set per call, as the sweep and
            `evaluate_robustness` do).
        seed: the attack's seed. Defaults to `None`.

    Returns:
        An `Attack` with the literature's defaults for everything the name
        does not say (AutoAttack's for APGD, APGD-T and Square).

    Examples:

        >>> from keras_adv import attacks
        >>> attack = attacks.get("pgd20", epsilon=8 / 255)
        >>> attack.steps, attacks.name_of(attack)
        (20, 'pgd20')
    """
    if isinstance(name, Attack):
        return name
    if not isinstance(name, str):
        raise ValueError(
            f"An attack name must be a string such as 'pgd20'. Received: {name!r}"
        )
    match = _PATTERN.fullmatch(name.strip().lower())
    if match is None:
        raise ValueError(f"Attack names are {GRAMMAR}. Received: {name!r}")
    kind, number, draws = match.group(1), match.group(2), match.group(3)
    norm = match.group(4) or "linf"
    kind = "nfgsm" if kind == "n-fgsm" else kind
    if kind in ("fgsm", "nfgsm") and number:
        raise ValueError(f"'{kind}' takes no step count. Received: {name!r}")
    if kind in ("pgd", "mim") and not number:
        raise ValueError(
            f"'{kind}' needs a step count, e.g. '{kind}20'. Received: {name!r}"
        )
    if kind in ("square", "fab-t") and norm == "l1":
        raise ValueError(
            f"'{kind}' attacks the L-inf or L2 ball ('-l2'), not L1. Received: {name!r}"
        )
    if draws is not None and kind not in ("apgd-ce", "apgd-dlr"):
        raise ValueError(
            f"'-eot<draws>' applies to apgd-ce and apgd-dlr only. Received: {name!r}"
        )
    if draws is not None and int(draws) < 1:
        raise ValueError(f"'-eot<draws>' needs draws >= 1. Received: {name!r}")
    if number and int(number) < 1:
        raise ValueError(f"Attack names need a count >= 1. Received: {name!r}")
    # Without a count, the class's own default (AutoAttack's for APGD, Square).
    count = (
        {("queries" if kind == "square" else "steps"): int(number)} if number else {}
    )
    if kind == "fgsm":
        return FGSM(epsilon, norm)
    if kind == "nfgsm":
        return NFGSM(epsilon, norm=norm, seed=seed)
    if kind == "pgd":
        return PGD(epsilon, norm, seed=seed, **count)
    if kind == "mim":
        return MIM(epsilon, norm, seed=seed, **count)
    if kind == "apgd-t":
        return APGDT(epsilon, norm, seed=seed, **count)
    if kind == "fab-t":
        return FABT(epsilon, seed=seed, norm=norm, **count)
    if kind == "square":
        return Square(epsilon, seed=seed, norm=norm, **count)
    eot = {} if draws is None else {"eot_draws": int(draws)}
    return APGD(epsilon, norm, loss=kind[5:], seed=seed, **count, **eot)


def for_measuring(attack: Attack, argument: str = "attacks") -> Attack:
    """`attack`, refused if it is a training attack whose examples leave the ball.

    Robust accuracy at `epsilon` counts examples no perturbation within
    `epsilon` breaks; an attack that goes beyond it (N-FGSM) would report
    too low a number, silently.
    """
    if not attack.stays_in_threat_model:
        raise ValueError(
            f"Argument `{argument}`: '{name_of(attack)}' is a training attack whose "
            "examples leave the epsilon ball, so it cannot measure robust "
            "accuracy; train with it (attack=..., --train-attack) and measure "
            "with pgd<steps> or autoattack."
        )
    return attack


def canonical(name: str) -> str:
    """The one spelling of the attack `name` names: `"PGD-20"` -> `"pgd20"`."""
    return name_of(get(name))


def name_of(attack: Attack) -> str:
    """The name of `attack` in `get`'s scheme: `"pgd20"`, `"apgd-ce"`, `"fgsm-l2"`.

    Attacks of other classes are named by their class (`"myattack"`); an
    APGD with a loss of its own is `"apgd-custom"`.
    """
    if isinstance(attack, NFGSM):
        base = "nfgsm"
    elif isinstance(attack, FGSM):
        base = "fgsm"
    elif isinstance(attack, FABT):
        base = _counted("fab-t", attack, "steps")
    elif isinstance(attack, APGDT):
        base = _counted("apgd-t", attack, "steps")
    elif isinstance(attack, APGD):
        loss = attack.loss if attack.loss in ("ce", "dlr") else "custom"
        base = _counted(f"apgd-{loss}", attack, "steps")
        if attack.eot_draws > 1:
            base = f"{base}-eot{attack.eot_draws}"
    elif isinstance(attack, (PGD, MIM)):
        base = f"{type(attack).__name__.lower()}{attack.steps}"
    elif isinstance(attack, Square):
        base = _counted("square", attack, "queries")
    else:
        base = type(attack).__name__.lower()
    norm = getattr(attack, "norm", "linf")
    return base if norm == "linf" else f"{base}-{norm}"


def _counted(kind, attack, count):
    """`kind`, with the attack's `count` unless it is its class's default."""
    value = getattr(attack, count)
    parameter = inspect.signature(type(attack)).parameters.get(count)
    default = None if parameter is None else parameter.default  # a subclass's own
    return kind if value == default else f"{kind}{value}"
