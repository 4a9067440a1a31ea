"""Attack names: `get("pgd20")` builds an attack, `name_of(attack)` names one.

One scheme for the whole library: the name a user types on the command line
or in a sweep's config is the name `evaluate_robustness`, the sweep's
results and the report show. `get(name_of(attack))` rebuilds the attack's
kind, step count and norm (other hyperparameters keep their defaults).
"""

import re

from keras_adv.attacks.apgd import APGD
from keras_adv.attacks.apgd_t import APGDT
from keras_adv.attacks.attack import Attack
from keras_adv.attacks.fgsm import FGSM
from keras_adv.attacks.mim import MIM
from keras_adv.attacks.pgd import PGD
from keras_adv.attacks.square import Square

WORST_CASE = "worst case"  # the row of the worst case over a set of attacks

GRAMMAR = (
    "'fgsm', 'pgd<steps>' (e.g. 'pgd20'), 'mim<steps>', 'apgd-ce[<steps>]', "
    "'apgd-dlr[<steps>]', 'apgd-t[<steps>]' (100 steps by default) or "
    "'square[<queries>]' (5000 by default), then '-l2' for the L2 ball "
    "instead of L-inf (not for square)"
)

_DEFAULT_COUNT = {"apgd-ce": 100, "apgd-dlr": 100, "apgd-t": 100, "square": 5000}
_PATTERN = re.compile(
    r"(fgsm|pgd|mim|apgd-ce|apgd-dlr|apgd-t|square)-?(\d*)(?:-(linf|l2))?"
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

    Example:

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
    kind, number, norm = match.group(1), match.group(2), match.group(3) or "linf"
    if kind == "fgsm" and number:
        raise ValueError(f"'fgsm' takes no step count. Received: {name!r}")
    if kind in ("pgd", "mim") and not number:
        raise ValueError(
            f"'{kind}' needs a step count, e.g. '{kind}20'. Received: {name!r}"
        )
    if kind == "square" and norm != "linf":
        raise ValueError(f"'square' attacks the L-inf ball only. Received: {name!r}")
    count = int(number) if number else _DEFAULT_COUNT.get(kind, 1)
    if count < 1:
        raise ValueError(f"Attack names need a count >= 1. Received: {name!r}")
    if kind == "fgsm":
        return FGSM(epsilon, norm)
    if kind == "pgd":
        return PGD(epsilon, norm, steps=count, seed=seed)
    if kind == "mim":
        return MIM(epsilon, norm, steps=count, seed=seed)
    if kind == "apgd-t":
        return APGDT(epsilon, norm, steps=count, seed=seed)
    if kind == "square":
        return Square(epsilon, queries=count, seed=seed)
    return APGD(epsilon, norm, steps=count, loss=kind[5:], seed=seed)


def name_of(attack: Attack) -> str:
    """The name of `attack` in `get`'s scheme: `"pgd20"`, `"apgd-ce"`, `"fgsm-l2"`.

    Attacks of other classes are named by their class (`"myattack"`); an
    APGD with a loss of its own is `"apgd-custom"`.
    """
    if isinstance(attack, FGSM):
        base = "fgsm"
    elif isinstance(attack, APGDT):
        base = _counted("apgd-t", attack.steps, 100)
    elif isinstance(attack, APGD):
        loss = attack.loss if attack.loss in ("ce", "dlr") else "custom"
        base = _counted(f"apgd-{loss}", attack.steps, 100)
    elif isinstance(attack, (PGD, MIM)):
        base = f"{type(attack).__name__.lower()}{attack.steps}"
    elif isinstance(attack, Square):
        base = _counted("square", attack.queries, 5000)
    else:
        base = type(attack).__name__.lower()
    norm = getattr(attack, "norm", "linf")
    return base if norm == "linf" else f"{base}-{norm}"


def _counted(kind, count, default):
    return kind if count == default else f"{kind}{count}"
