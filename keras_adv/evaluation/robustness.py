"""Robust accuracy per attack and per epsilon, the worst case over attacks, checks."""

import dataclasses
import json
import os
import warnings
from collections.abc import Mapping
from collections.abc import Sequence

import keras
import numpy as np

from keras_adv import argument_validation as validation
from keras_adv.attacks.apgd import APGD
from keras_adv.attacks.apgd_t import APGDT
from keras_adv.attacks.attack import Attack
from keras_adv.attacks.fab import FABT
from keras_adv.attacks.names import for_measuring
from keras_adv.attacks.names import get
from keras_adv.attacks.names import name_of
from keras_adv.attacks.square import Square
from keras_adv.evaluation import sanity_checks
from keras_adv.evaluation.eta import Eta
from keras_adv.evaluation.probe import ProbeSet
from keras_adv.evaluation.probe import check_single_output
from keras_adv.evaluation.state import EvaluationState
from keras_adv.evaluation.state import digest

AUTOATTACK = "autoattack"
AUTOATTACK_RAND = "autoattack-rand"


def autoattack(
    epsilon: float,
    norm: str = "linf",
    seed: int | None = None,
    version: str = "standard",
) -> dict[str, Attack]:
    """AutoAttack's standard set (or its `rand` version): `{name: attack}`.

    APGD-CE (100 steps), APGD-T (targeted DLR, 9 target classes, 100 steps
    each), FAB-T (9 target classes, 100 steps each) and Square (5000
    queries), on L-inf or L2, with the hyperparameters of "Reliable
    evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", Croce & Hein 2020, arXiv:2003.01690.

    `version="rand"` is AutoAttack's set for models random at inference:
    APGD-CE and APGD-DLR, 100 steps, each step's gradient averaged over 20
    draws of the model's randomness (`APGD(eot_draws=20)`).
    """
    if version == "rand":
        attacks = [
            APGD(epsilon, norm, steps=100, loss=loss, seed=seed, eot_draws=20)
            for loss in ("ce", "dlr")
        ]
        return {name_of(attack): attack for attack in attacks}
    if version != "standard":
        raise ValueError(
            "Argument `version` must be 'standard' or 'rand'. "
            f"Received: version={version!r}"
        )
    attacks = [
        APGD(epsilon, norm, steps=100, loss="ce", seed=seed),
        APGDT(epsilon, norm, steps=100, target_classes=9, seed=seed),
        FABT(epsilon, steps=100, target_classes=9, norm=norm, seed=seed),
        Square(epsilon, queries=5000, p_init=0.8, seed=seed, norm=norm),
    ]
    return {name_of(attack): attack for attack in attacks}


@dataclasses.dataclass
class RobustnessResult:
    """What `evaluate_robustness` measured.

    Attributes:
        epsilons: the budgets, in order.
        clean_accuracy: accuracy on the unperturbed examples.
        robust_accuracy: `{attack name: [accuracy at each epsilon]}`.
        worst_case: per epsilon, the share of examples that are right clean
            and under every attack (broken by any attack counts as broken).
        attacks: `{attack name: config}` (the epsilon of each column is the
            column's).
        checks: the `sanity_checks.Check`s that ran, passed or failed.
        num_examples: how many examples were attacked.
        cascade: whether each attack ran only on the examples still robust
            (`robust_accuracy` is then cumulative, in the attacks' order).
    """

    epsilons: list
    clean_accuracy: float
    robust_accuracy: dict
    worst_case: list
    attacks: dict
    checks: list
    num_examples: int
    cascade: bool = False

    @property
    def failed_checks(self) -> list:
        return [check for check in self.checks if not check.passed]

    def to_dict(self) -> dict:
        """A JSON-ready dict (checks as dicts)."""
        return dataclasses.asdict(self)

    def to_robustbench(self, epsilon: float, dataset: str, **info) -> dict:
        """RobustBench's model-info fields for this evaluation at `epsilon`.

        The fields of RobustBench's `model_info/<dataset>/<threat model>/`
        files: `clean_acc` and `autoattack_acc` as percentages with two
        decimals in strings, `eps`, `dataset`; `threat_model` (`"Linf"` or
        `"L2"`, the folder there) and `n_examples` beside them, and a
        `footnote` naming the attacks. `autoattack_acc` is the worst case over
        this evaluation's attacks, which must include AutoAttack's four
        (APGD-CE, APGD-T, FAB-T and Square). `info` fills the descriptive
        fields (`name`, `link`, `authors`, `venue`, `architecture`,
        `additional_data`, `number_forward_passes`, `reported`), `None` when
        not given.

        Args:
            epsilon: one of the evaluated budgets.
            dataset: RobustBench's dataset name, e.g. `"cifar10"`.
            **info: the descriptive fields.

        Returns:
            A JSON-ready dict.
        """
        if epsilon not in self.epsilons:
            raise ValueError(
                f"Argument `epsilon` must be one of the evaluated budgets "
                f"{self.epsilons}. Received: epsilon={epsilon!r}"
            )
        norms_used = {config.get("norm") for config in self.attacks.values()}
        if len(norms_used) != 1 or not norms_used <= {"linf", "l2"}:
            raise ValueError(
                "RobustBench reports one threat model, L-inf or L2; these "
                f"attacks use {sorted(map(str, norms_used))}."
            )
        (norm,) = norms_used
        needed = {"apgd-ce", "apgd-t", "fab-t", "square"}
        needed = {name if norm == "linf" else f"{name}-l2" for name in needed}
        missing = sorted(needed - set(self.robust_accuracy))
        if missing:
            raise ValueError(
                f"`autoattack_acc` needs AutoAttack's attacks; missing {missing}. "
                "Evaluate with attacks='autoattack'."
            )
        column = self.epsilons.index(epsilon)
        unknown = sorted(set(info) - set(ROBUSTBENCH_INFO))
        if unknown:
            raise ValueError(
                f"Unknown RobustBench fields {unknown}; known: {list(ROBUSTBENCH_INFO)}"
            )
        return {
            **dict.fromkeys(ROBUSTBENCH_INFO),
            **info,
            "dataset": dataset,
            "threat_model": {"linf": "Linf", "l2": "L2"}[norm],
            "eps": epsilon,
            "clean_acc": f"{100 * self.clean_accuracy:.2f}",
            "autoattack_acc": f"{100 * self.worst_case[column]:.2f}",
            "n_examples": self.num_examples,
            "footnote": (
                f"keras-adv: worst case over {', '.join(self.robust_accuracy)} "
                f"on {self.num_examples} test points."
            ),
        }


# RobustBench's descriptive model-info fields, filled by `to_robustbench(**info)`.
ROBUSTBENCH_INFO = (
    "link",
    "name",
    "authors",
    "additional_data",
    "number_forward_passes",
    "venue",
    "architecture",
    "reported",
)


class RobustnessWarning(UserWarning):
    """A sanity check found a sign that the robustness numbers are not trustworthy."""


def evaluate_robustness(
    model: keras.Model,
    data,
    *,
    epsilons: float | Sequence[float],
    attacks: str | Sequence[Attack | str] | Mapping[str, Attack] = AUTOATTACK,
    checks: bool = True,
    tolerance: float = 0.02,
    batch_size: int = 256,
    max_examples: int | None = None,
    seed: int | None = None,
    perturb: "str | keras.layers.Layer | None" = None,
    relative_budget: bool = False,
    per_token: bool = False,
    verbose: int = 0,
    state_path: "str | os.PathLike | None" = None,
    cascade: bool | None = None,
) -> "RobustnessResult":
    """Robust accuracy of `model` under each attack at each epsilon, and the worst case.

    Each attack runs at each epsilon (compiled once per attack; the budget
    is a tensor). An example counts as robust at an epsilon only if it is
    classified right clean and under every attack. The sanity checks of
    `keras_adv.sanity_checks` then run; each failure is also issued as a
    `RobustnessWarning` carrying its evidence.

    Args:
        model: a `keras.Model` with one output (logits preferred).
        data: an `(x, y)` pair of arrays or a dataset of `(x, y)` batches.
        epsilons: the budgets to evaluate, on the scale of the inputs.
        attacks: `"autoattack"` (see `autoattack`), `"autoattack-rand"`
            (its version for models random at inference), a list of `Attack`s or
            attack names (`["fgsm", "pgd20"]`, see `keras_adv.attacks.get`),
            or a `{name: Attack}` dict. Results are keyed by the attacks'
            names (`keras_adv.attacks.name_of`). The attacks' own epsilon is
            ignored.
            Defaults to `"autoattack"`.
        checks: run the sanity checks. They cost about two more epsilons
            (one large, one with doubled steps and restarts). Defaults to
            `True`.
        tolerance: the accuracy difference the checks allow. Defaults to 0.02.
        batch_size: examples per attack call. Defaults to 256.
        max_examples: evaluate at most this many examples. Defaults to all.
        seed: seed for attacks given by name (`"autoattack"` too) and the
            checks' noise.
            Defaults to `None`.
        perturb: attack a layer's output instead of the inputs (text
            models: `"embeddings"`, a layer name or a layer; see
            `keras_adv.attacks.layer_perturbation`): a sensitivity measure in
            embedding space, not a word-substitution attack. The budgets are
            norms at that layer and nothing is clipped. The sanity checks
            run there too (gradients at the layer, noise at the layer), all
            but `chance_at_large_epsilon`: with no clip, no budget is known
            to hold a constant output. Defaults to `None` (the inputs).
        relative_budget: with `perturb`, each epsilon is a share of each
            example's norm at the layer. Defaults to `False` (absolute).
        per_token: with `perturb`, each token of the layer's output gets
            the budget instead of each example (see `AdversarialModel`);
            for FGSM, PGD (`restarts=1`) and MIM. Defaults to `False`.
        verbose: 1 prints a line as each attack finishes each epsilon
            (robust accuracy, its place, time spent and left) and one before
            the sanity checks; 0 prints nothing. Defaults to 0.
        state_path: a file to save the per-example results in after each
            attack at each epsilon (`evaluation.state`). Rerun with the same
            arguments after an interruption: the saved runs are skipped and
            the result equals an uninterrupted evaluation's. A file from
            another evaluation (other weights, examples, attacks, budgets or
            seed) is refused. The sanity checks are not saved; they rerun.
            Defaults to `None` (nothing saved).
        cascade: run each attack, at each budget, only on the examples
            still robust (right clean and under the attacks before it, in
            order), as AutoAttack's reference does: the worst case is the
            same, and an example costs nothing more once broken. Each
            attack's `robust_accuracy` is then the accuracy after it and
            the ones before it (what AutoAttack prints), not its own.
            Defaults to `None`: on for `"autoattack"` and
            `"autoattack-rand"`, off for a list or dict of attacks (whose
            rows are then each attack's own).

    Returns:
        A `RobustnessResult`.

    Examples:

        >>> import numpy as np, keras
        >>> from keras_adv import PGD, evaluate_robustness
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x = np.random.rand(16, 4).astype("float32")
        >>> result = evaluate_robustness(
        ...     model, (x, np.arange(16) % 3), epsilons=[0.1],
        ...     attacks=[PGD(0.1, steps=5)], checks=False)
        >>> len(result.worst_case)
        1
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            "Argument `model` must be a keras.Model. "
            f"Received: model of type {type(model).__name__}"
        )
    check_single_output(model, "evaluate_robustness")
    epsilons = _check_epsilons(epsilons)
    if cascade is None:
        cascade = isinstance(attacks, str) and attacks in (AUTOATTACK, AUTOATTACK_RAND)
    cascade = validation.check_bool(cascade, "cascade")
    named = _named_attacks(attacks, epsilons, seed)
    tolerance = validation.check_epsilon(tolerance, "tolerance")
    batch_size = validation.check_positive(batch_size, "batch_size", integer=True)
    if not isinstance(verbose, (int, np.integer)) or verbose not in (0, 1):
        raise ValueError(
            f"Argument `verbose` must be 0 or 1. Received: verbose={verbose!r}"
        )
    limit = 2**62 if max_examples is None else max_examples
    probe = ProbeSet(
        data,
        max_examples=limit,
        batch_size=batch_size,
        perturb=perturb,
        relative_budget=relative_budget,
        per_token=per_token,
    )
    for clip in {attack.clip for attack in named.values()}:  # at epsilon 0 too
        probe.check_range(clip)
    _check_randomness(probe, model, attacks == AUTOATTACK_RAND)
    say = print if verbose else None
    state = None
    if state_path is not None:
        identity = _identity(
            model, probe, named, epsilons, seed, perturb, relative_budget
        )
        if per_token:  # only then: older state files keep their identity
            identity["per_token"] = True
        identity["cascade"] = cascade
        state = EvaluationState(state_path, identity, len(probe))
    clean, correct = _correct_per_example(
        probe, model, named, epsilons, say, state, cascade
    )
    worst = worst_case(clean, correct)
    found = []
    if checks:
        if say is not None:
            say(
                f"sanity checks on {len(probe)} examples (about two more "
                "epsilons of attacks)"
            )
        found = sanity_checks.run_checks(
            probe, model, clean, named, epsilons, correct, worst, tolerance, seed
        )
        for check in found:
            if not check.passed:
                warnings.warn(
                    f"{check.name}: {check.message}", RobustnessWarning, stacklevel=2
                )
    return RobustnessResult(
        epsilons=list(epsilons),
        clean_accuracy=float(clean.mean()),
        robust_accuracy={
            name: [float(c.mean()) for c in cols] for name, cols in correct.items()
        },
        worst_case=[float(w.mean()) for w in worst],
        attacks={name: _config(attack) for name, attack in named.items()},
        checks=found,
        num_examples=len(probe),
        cascade=cascade,
    )


def worst_case(clean, correct):
    """Per epsilon, per example: right clean and under every attack.

    Args:
        clean: per-example correctness on the unperturbed examples.
        correct: `{attack name: [per-example correctness at each epsilon]}`.

    Returns:
        A list with one boolean array per epsilon (an example broken by any
        attack counts as broken).
    """
    columns = list(zip(*correct.values(), strict=True))
    return [np.logical_and.reduce([clean, *column]) for column in columns]


def _correct_per_example(
    probe, model, named, epsilons, say=None, state=None, cascade=False
):
    """`(clean, {name: [per-example correctness at each epsilon]})`.

    The clean results come with the first attack run (no separate clean
    pass unless every budget is 0, or the cascade needs them first); at
    epsilon 0 no attack runs. With `cascade`, budget by budget, each attack
    runs only on the examples right clean and under the attacks before it,
    and its column holds the correctness after it (cumulative). `say`, if
    given, gets a line per attack run. With a `state`, runs it holds are
    taken from it, each attack continues from its saved random state, and
    each new run is saved.
    """
    clean = None if state is None else state.clean
    if cascade and clean is None:
        clean = probe.clean_correct(model)
    runs = [(n, e) for n in named for e in epsilons if e > 0]
    if cascade:  # budget by budget: the survivors pass from attack to attack
        runs = [(n, e) for e in epsilons if e > 0 for n in named]
    correct = {name: [None] * len(epsilons) for name in named}
    saved = {run for run in runs if state is not None and state.get(*run) is not None}
    eta = Eta(len(runs), done=len(saved))
    if saved and say is not None:
        say(f"{len(saved)} of {len(runs)} attack runs saved in {state.path}, skipped")
    for name, attack in named.items():
        if state is not None and name in state.random_states:
            variable = attack.seed_generator.state
            variable.assign(np.asarray(state.random_states[name], variable.dtype))
    survivors = {}
    for name, eps in runs:
        column = epsilons.index(eps)
        if (name, eps) in saved:
            outcome_correct = state.get(name, eps)
        elif cascade:
            among = survivors.get(eps, clean)
            outcome_correct = among & probe.correct_among(
                model, named[name], eps, among
            )
        else:
            outcome = probe.run(model, named[name], epsilon=eps)
            clean = outcome.clean if clean is None else clean
            outcome_correct = outcome.correct
        if cascade:
            survivors[eps] = outcome_correct
        correct[name][column] = outcome_correct
        if (name, eps) in saved:
            continue
        if state is not None:
            random_state = keras.ops.convert_to_numpy(named[name].seed_generator.state)
            state.put(name, eps, outcome_correct, clean, random_state)
        if say is not None:
            say(
                f"{name} eps {eps:g} | robust acc {outcome_correct.mean():.3f}"
                f"{' (after the attacks before it)' if cascade else ''} "
                f"| attack {eta.step()}"
            )
    if clean is None:
        clean = probe.clean_correct(model)
    for columns in correct.values():
        columns[:] = [clean.copy() if c is None else c for c in columns]
    return clean, correct


def _check_randomness(probe, model, rand_preset):
    """Refuses a model random at inference on JAX; warns when the preset for
    random models is spent on a deterministic one. Two predictions of the
    probe's first examples tell (with the preset, and on JAX for a model
    holding a seed generator)."""
    on_jax = keras.backend.backend() == "jax"
    if not (rand_preset or (on_jax and _has_seed_generators(model))):
        return  # on JAX, only a seeded generator can draw inside a compiled call
    stochastic = not sanity_checks.deterministic(probe, model).passed
    if stochastic and on_jax:
        raise ValueError(
            "The model is random at inference (two predictions of the same "
            "inputs differ); on JAX the compiled attacks cannot carry its random "
            "state through their loops. Evaluate it with KERAS_BACKEND="
            "tensorflow or torch (attacks='autoattack-rand' averages over its draws)."
        )
    if rand_preset and not stochastic:
        warnings.warn(
            "attacks='autoattack-rand' averages each gradient over 20 draws, but "
            "the model is deterministic at inference (two predictions agree): "
            "attacks='autoattack' is stronger here and 20 times cheaper.",
            RobustnessWarning,
            stacklevel=3,
        )


def _has_seed_generators(model):
    """Whether `model` holds a `keras.random.SeedGenerator` (Dropout, noise
    layers; not an `AdversarialModel`'s training attack's). A model without
    one cannot draw inside a compiled JAX call, so it need not be asked
    twice (two `predict` passes, which a multi-process JAX distribution
    cannot gather)."""
    attack = getattr(model, "attack", None)  # an AdversarialModel's own attack
    own = getattr(getattr(attack, "seed_generator", None), "state", None)
    return any(
        v.name == "seed_generator_state" and v is not own for v in model.variables
    )


def _check_epsilons(epsilons):
    if isinstance(epsilons, (int, float)):
        epsilons = [epsilons]
    epsilons = [validation.check_epsilon(e, "epsilons") for e in epsilons]
    if not epsilons:
        raise ValueError("Argument `epsilons` must hold at least one budget.")
    return sorted(epsilons)


def _named_attacks(attacks, epsilons, seed):
    if isinstance(attacks, str):
        if attacks not in (AUTOATTACK, AUTOATTACK_RAND):
            raise ValueError(
                f"Argument `attacks` must be '{AUTOATTACK}', '{AUTOATTACK_RAND}', a "
                "list of attacks or a dict of named attacks. "
                f"Received: attacks={attacks!r}"
            )
        version = "rand" if attacks == AUTOATTACK_RAND else "standard"
        return autoattack(max(epsilons), seed=seed, version=version)
    if isinstance(attacks, dict):
        named = dict(attacks)
    else:
        named = {}
        for attack in attacks:
            if isinstance(attack, str):
                try:
                    attack = get(attack, 0.0, seed)
                except ValueError as error:
                    raise ValueError(f"Argument `attacks`: {error}") from None
            name, count = name_of(attack), 1
            while name in named:
                count += 1
                name = f"{name_of(attack)}#{count}"
            named[name] = attack
    if not named or not all(isinstance(a, Attack) for a in named.values()):
        raise ValueError(
            "Argument `attacks` must hold at least one keras_adv Attack. "
            f"Received: attacks={attacks!r}"
        )
    for attack in named.values():
        for_measuring(attack)
    return named


def _identity(model, probe, named, epsilons, seed, perturb, relative_budget):
    """What names an evaluation, for its state file: JSON as it reads back."""
    layer = getattr(perturb, "name", perturb)
    identity = {
        "weights": digest(model.get_weights()),
        "examples": digest(keras.tree.flatten((probe.x, probe.y))),
        "attacks": {name: _config(attack) for name, attack in named.items()},
        "epsilons": list(epsilons),
        "seed": seed,
        "perturb": layer,
        "relative_budget": relative_budget,
    }
    return json.loads(json.dumps(identity, default=str))


def _config(attack):
    config = attack.get_config()
    config["epsilon"] = "per column"
    return config
