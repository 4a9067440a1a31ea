"""Sanity checks on a robustness evaluation, after Carlini et al. 2019.

"On Evaluating Adversarial Robustness", arXiv:1902.06705, lists the signs
that an evaluation is too weak to trust (gradient masking, too few steps,
stochastic models). Each check here returns a `Check` with its evidence;
`evaluation.evaluate_robustness` runs them all and warns on failures.
"""

import dataclasses
import math
from collections.abc import Mapping
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from keras_adv import backend
from keras_adv import losses
from keras_adv import norms
from keras_adv.attacks import layer_perturbation
from keras_adv.attacks.attack import Attack
from keras_adv.attacks.fgsm import FGSM
from keras_adv.attacks.names import WORST_CASE
from keras_adv.evaluation.probe import ProbeSet

# The shapes of an evaluation's per-example results, as the checks receive them.
Hits = np.ndarray  # one bool per example: classified right
Attacks = Mapping[str, Attack]
Columns = Mapping[str, Sequence[Hits]]  # per attack, per epsilon


@dataclasses.dataclass
class Check:
    """One sanity check: its name, whether it passed, and why."""

    name: str
    passed: bool
    message: str
    evidence: dict = dataclasses.field(default_factory=dict)


def run_checks(
    probe: ProbeSet,
    model: keras.Model,
    clean: Hits,
    attacks: Attacks,
    epsilons: Sequence[float],
    correct: Columns,
    worst: list[Hits],
    tolerance: float,
    seed: int | None = None,
) -> list[Check]:
    """All checks, in a fixed order. See each function for what it tests.

    Args:
        probe: the `evaluation.ProbeSet` (the examples) that was attacked.
        model: the `keras.Model` evaluated.
        clean: per-example correctness on the clean examples.
        attacks: `{name: Attack}` that were evaluated.
        epsilons: the budgets, ascending.
        correct: `{name: [per-example correctness at each epsilon]}`.
        worst: per epsilon, per-example correctness under every attack; a
            failed `more_iterations_change_little` adds the doubled attack's
            results to it (in place).
        tolerance: the accuracy difference allowed.
        seed: seed of the random noise. Defaults to `None`.
    """
    accuracy = {name: [c.mean() for c in cols] for name, cols in correct.items()}
    accuracy[WORST_CASE] = [w.mean() for w in worst]
    # At a layer (`probe.perturb`) the attacks are unclipped, so no budget
    # is known to hold a constant output: chance_at_large_epsilon does not run.
    at_layer = probe.perturb is not None
    large = []
    if not at_layer:
        large = [chance_at_large_epsilon(probe, model, attacks, tolerance)]
    return [
        outputs_are_logits(probe, model),
        deterministic(probe, model, attacks),
        zero_gradients(probe, model),
        *large,
        accuracy_falls_with_epsilon(accuracy, epsilons, tolerance),
        iterative_beats_fgsm(
            probe, model, clean, attacks, epsilons, accuracy, tolerance
        ),
        more_iterations_change_little(
            probe, model, attacks, epsilons, correct, worst, tolerance
        ),
        black_box_not_stronger(
            probe, model, clean, attacks, epsilons, correct, tolerance, seed
        ),
    ]


def _correct(probe, model, clean, attack, epsilon):
    """Per-example correctness under `attack` at `epsilon` (clean at 0)."""
    if epsilon == 0:
        return clean.copy()
    return probe.correct(model, attack, epsilon)


def outputs_are_logits(probe: ProbeSet, model: keras.Model) -> Check:
    """Probabilities saturate: their gradients vanish where the model is sure."""
    outputs = ops.convert_to_tensor(probe.predict(model, probe.x[:256]))
    probabilities = bool(ops.convert_to_numpy(losses.is_probability(outputs)))
    if outputs.shape[-1] == 1 or not probabilities:
        return Check("outputs_are_logits", True, "The model outputs logits.")
    return Check(
        "outputs_are_logits",
        False,
        "The model outputs probabilities (rows in [0, 1] summing to 1): gradients "
        "through a softmax vanish where it is confident, which weakens gradient "
        "attacks. Attack the logits: keras.Model(model.inputs, "
        "model.layers[-1].input) or a final layer without activation.",
        {"rows_checked": int(outputs.shape[0])},
    )


def deterministic(
    probe: ProbeSet, model: keras.Model, attacks: Attacks | None = None
) -> Check:
    """A randomized model needs attacks that average over its randomness (EOT).

    Passes for a stochastic model when every attack averages its gradients
    over draws (`APGD(eot_draws=...)`, `attacks="autoattack-rand"`).
    """
    x = probe.x[:256]
    first, second = probe.predict(model, x), probe.predict(model, x)
    gap = float(np.max(np.abs(np.asarray(first) - np.asarray(second))))
    scale = 1e-5 * (1.0 + float(np.max(np.abs(first))))
    if gap <= scale:
        return Check("deterministic", True, "Two predictions of the same inputs agree.")
    if attacks and all(getattr(a, "eot_draws", 1) > 1 for a in attacks.values()):
        return Check(
            "deterministic",
            True,
            f"Two predictions of the same inputs differ by up to {gap:.3g}: the "
            "model is stochastic at inference, and every attack averages its "
            "gradients over draws (EOT).",
            {"max_output_difference": gap},
        )
    return Check(
        "deterministic",
        False,
        f"Two predictions of the same inputs differ by up to {gap:.3g}: the model "
        "is stochastic at inference, so one-sample gradients are noisy and robust "
        "accuracy overstated. Remove the randomness or attack its expectation (EOT).",
        {"max_output_difference": gap},
    )


def zero_gradients(probe: ProbeSet, model: keras.Model) -> Check:
    """Exactly zero input gradients: nothing for a gradient attack to follow.

    With `probe.perturb`, the gradient at that layer's output (where the
    attacks start), over its unmasked positions.
    """
    site = None
    if probe.perturb is not None:
        site = layer_perturbation.at(model, probe.perturb)

    def forward(inputs):
        return model(inputs, training=False)

    zero = []
    for start in range(0, len(probe.x), probe.batch_size):
        x = ops.convert_to_tensor(probe.x[start : start + probe.batch_size])
        y = ops.convert_to_tensor(probe.y[start : start + probe.batch_size])
        point, at = x, forward
        if site is not None:
            point, at, _ = site.prepare(forward, x, probe.relative_budget)
        _, grad = backend.value_and_input_grad(
            lambda t, y=y, at=at: ops.sum(losses.crossentropy(y, at(t))), point
        )
        largest = ops.convert_to_numpy(norms.lp_norm(grad, "linf"))
        zero.append(largest == 0)
    share = float(np.concatenate(zero).mean())
    where = "input" if site is None else f"{site.layer.name!r} output"
    if share == 0:
        return Check(
            "zero_gradients", True, f"Every example has a nonzero {where} gradient."
        )
    return Check(
        "zero_gradients",
        False,
        f"{share:.1%} of examples have an exactly zero {where} gradient of the "
        "loss (masked or saturated gradients): gradient attacks cannot move them. "
        "Trust the gradient-free attacks (Square) for these numbers.",
        {"zero_gradient_share": share},
    )


def _large_epsilon(attack, x):
    """Half the valid range per coordinate: the ball then holds a constant image."""
    low, high = attack.clip if attack.clip is not None else (x.min(), x.max())
    half = 0.5 * float(high - low)
    scale = {"linf": 1.0, "l2": float(np.sqrt(x[0].size)), "l1": float(x[0].size)}
    return half * scale[attack.norm]


def chance_at_large_epsilon(
    probe: ProbeSet, model: keras.Model, attacks: Attacks, tolerance: float
) -> Check:
    """An unbounded-enough attack must reach chance accuracy, or it is broken."""
    labels = np.argmax(probe.y, -1) if probe.y.ndim > 1 else probe.y
    chance = float(np.bincount(np.ravel(labels).astype(int)).max() / len(labels))
    above, evidence = [], {"chance": chance}
    for name, attack in attacks.items():
        eps = _large_epsilon(attack, probe.x)
        acc = float(probe.correct(model, attack, eps).mean())
        evidence[name] = {"epsilon": eps, "accuracy": acc}
        if acc > chance + tolerance:
            above.append(f"{name} {acc:.3f} at eps {eps:g}")
    if not above:
        return Check(
            "chance_at_large_epsilon",
            True,
            f"Every attack reaches chance ({chance:.3f}) at a large epsilon.",
            evidence,
        )
    return Check(
        "chance_at_large_epsilon",
        False,
        f"Above chance ({chance:.3f}) at an epsilon that allows any image: "
        f"{'; '.join(above)}. The attack cannot find what must exist: suspect "
        "masked gradients or a bug in the attack setup.",
        evidence,
    )


def accuracy_falls_with_epsilon(
    accuracy: Mapping[str, Sequence[float]],
    epsilons: Sequence[float],
    tolerance: float,
) -> Check:
    """A larger ball holds every point of a smaller one: accuracy cannot rise."""
    rises = [
        f"{name} {acc[i]:.3f} -> {acc[i + 1]:.3f} (eps {epsilons[i]:g} -> "
        f"{epsilons[i + 1]:g})"
        for name, acc in accuracy.items()
        for i in range(len(epsilons) - 1)
        if acc[i + 1] > acc[i] + tolerance
    ]
    if not rises:
        return Check(
            "accuracy_falls_with_epsilon", True, "Robust accuracy never rises."
        )
    return Check(
        "accuracy_falls_with_epsilon",
        False,
        f"Robust accuracy rises with epsilon: {'; '.join(rises)}. The attack "
        "fails to use its budget (step size or masked gradients).",
        {"rises": rises},
    )


def _iterative(attacks):
    """The gradient attacks with a `steps` hyperparameter (FGSM has none)."""
    return {
        n: a
        for n, a in attacks.items()
        if a.uses_gradients and "steps" in a.get_config()
    }


def iterative_beats_fgsm(
    probe: ProbeSet,
    model: keras.Model,
    clean: Hits,
    attacks: Attacks,
    epsilons: Sequence[float],
    accuracy: Mapping[str, Sequence[float]],
    tolerance: float,
) -> Check:
    """Many gradient steps must do at least as well as one (FGSM)."""
    weaker, evidence, fgsm_accuracy = [], {}, {}
    for name, attack in _iterative(attacks).items():
        # One FGSM per threat model (norm, clip), compared with its attacks.
        threat = (attack.norm, attack.clip)
        if threat not in fgsm_accuracy:
            fgsm = FGSM(1.0, norm=attack.norm, clip=attack.clip)
            fgsm_accuracy[threat] = [
                float(_correct(probe, model, clean, fgsm, e).mean()) for e in epsilons
            ]
            evidence[f"FGSM ({attack.norm}, clip {attack.clip})"] = fgsm_accuracy[
                threat
            ]
        fgsm_acc = fgsm_accuracy[threat]
        for i, eps in enumerate(epsilons):
            if accuracy[name][i] > fgsm_acc[i] + tolerance:
                weaker.append(
                    f"{name} {accuracy[name][i]:.3f} vs FGSM {fgsm_acc[i]:.3f} "
                    f"at eps {eps:g}"
                )
    if not weaker:
        return Check(
            "iterative_beats_fgsm",
            True,
            "Iterative attacks are at least as strong as FGSM.",
            evidence,
        )
    return Check(
        "iterative_beats_fgsm",
        False,
        f"Weaker than one FGSM step: {'; '.join(weaker)}. The iterative attack is "
        "misconfigured (step size, steps) or the loss surface is masked.",
        evidence,
    )


# The doubling check's false-alarm rate per evaluation (split over its attacks).
SIGNIFICANCE = 0.01


def more_iterations_change_little(
    probe: ProbeSet,
    model: keras.Model,
    attacks: Attacks,
    epsilons: Sequence[float],
    correct: Columns,
    worst: list[Hits],
    tolerance: float,
) -> Check:
    """Doubling steps and restarts must not lower accuracy: the attack converged.

    Runs at the budget whose worst-case accuracy is nearest 50%, where more
    effort shows most, and compares per example (paired) with the
    evaluation's own results, not with a rerun: `b` examples broken only by
    the doubled attack, `c` only by the original. An attack that converged
    breaks either set by chance (its random starts), so `b` is then
    Binomial(b + c, 1/2). The check fails when the accuracy drop `(b - c) /
    n` exceeds `tolerance` and the one-sided sign test gives `P(B >= b) <
    SIGNIFICANCE / attacks checked` (Bonferroni): a drop that the number of
    examples cannot tell from random starts does not fail it.

    When it fails, the doubled attack's results join `worst` (updated in
    place) at that budget, so the worst case reports the stronger attack.
    """
    budgets = [
        (abs(w.mean() - 0.5), e) for e, w in zip(epsilons, worst, strict=True) if e > 0
    ]
    iterative = _iterative(attacks)
    if not budgets or not iterative:
        return Check("more_iterations_change_little", True, "No iterative attack ran.")
    eps = min(budgets)[1]
    column = epsilons.index(eps)
    level = SIGNIFICANCE / len(iterative)
    drops, evidence = [], {"epsilon": eps, "significance": level}
    for name, attack in iterative.items():
        overrides = {"steps": 2 * attack.steps}
        restartable = getattr(attack, "random_start", False) and hasattr(
            attack, "restarts"
        )
        if restartable and not getattr(probe, "per_token", False):  # one start each
            overrides["restarts"] = 2 * attack.restarts
        before = correct[name][column]
        after = probe.correct(model, attack.clone(**overrides), eps)
        only_doubled = int(np.sum(before & ~after))
        only_original = int(np.sum(~before & after))
        p_value = sign_test(only_doubled, only_original)
        evidence[name] = {
            "accuracy": float(before.mean()),
            "doubled": float(after.mean()),
            "broken_only_by_doubled": only_doubled,
            "broken_only_by_original": only_original,
            "p_value": p_value,
            **overrides,
        }
        drop = (only_doubled - only_original) / len(before)
        if drop > tolerance and p_value < level:
            drops.append(
                f"{name} {before.mean():.3f} -> {after.mean():.3f} "
                f"({only_doubled} examples broken only by the doubled attack, "
                f"{only_original} only by the original, p={p_value:.2g})"
            )
            worst[column] = worst[column] & after
    if not drops:
        return Check(
            "more_iterations_change_little",
            True,
            f"Doubling steps and restarts at eps {eps:g} lowers accuracy by at most "
            f"{tolerance:g}, or by less than {len(before)} examples can tell from "
            f"random starts (sign test, p >= {level:g}).",
            evidence,
        )
    return Check(
        "more_iterations_change_little",
        False,
        f"Doubling steps and restarts at eps {eps:g} lowers accuracy: "
        f"{'; '.join(drops)}. The attack has not converged; the worst case at eps "
        f"{eps:g} includes the doubled attack.",
        evidence,
    )


def sign_test(wins: int, losses: int) -> float:
    """One-sided sign test: `P(B >= wins)` for `B ~ Binomial(wins + losses, 1/2)`."""
    trials = wins + losses
    if wins == 0:
        return 1.0
    tail = sum(math.comb(trials, k) for k in range(wins, trials + 1))
    return float(tail / 2**trials)


def black_box_not_stronger(
    probe: ProbeSet,
    model: keras.Model,
    clean: Hits,
    attacks: Attacks,
    epsilons: Sequence[float],
    correct: Columns,
    tolerance: float,
    seed: int | None = None,
) -> Check:
    """Examples broken by noise or gradient-free attacks, missed by the white box.

    A white-box attack sees more than random noise or Square: if they break
    an example it leaves robust, its gradients are misleading (masking).
    Fails when such examples exceed `tolerance` of all examples; fewer are
    reported in the message of a passing check.
    """
    white = [n for n, a in attacks.items() if a.uses_gradients]
    black = [n for n, a in attacks.items() if not a.uses_gradients]
    if not white:
        return Check("black_box_not_stronger", True, "No white-box attack ran.")
    norm = attacks[white[0]].norm
    noise = _Noise(norm, attacks[white[0]].clip, seed)
    missed, evidence = [], {}
    for i, eps in enumerate(epsilons):
        if eps == 0:
            continue
        white_right = np.logical_and.reduce([correct[n][i] for n in white])
        black_right = np.logical_and.reduce(
            [correct[n][i] for n in black] + [probe.correct(model, noise, eps)]
        )
        count = int(np.sum(clean & white_right & ~black_right))
        evidence[f"{eps:g}"] = count
        if count:
            missed.append((count / len(clean), f"{count} at eps {eps:g}"))
    sources = " and ".join(["random noise"] + black)
    if all(share <= tolerance for share, _ in missed):
        found = ", ".join(text for _, text in missed) or "none"
        return Check(
            "black_box_not_stronger",
            True,
            f"Examples broken by {sources} but by no white-box attack: {found} "
            f"(at most {tolerance:g} of the examples allowed).",
            evidence,
        )
    missed = [text for _, text in missed]
    return Check(
        "black_box_not_stronger",
        False,
        f"Examples broken by {sources} but by no white-box attack: "
        f"{', '.join(missed)}. The gradients mislead the white-box attacks "
        "(gradient masking); the white-box numbers overstate robustness.",
        evidence,
    )


class _Noise(FGSM):
    """Random noise on the ball's surface (a random vertex for L-inf)."""

    uses_gradients = False

    def __init__(self, norm, clip, seed):
        super().__init__(1.0, norm=norm, clip=clip, seed=seed)

    def get_config(self):
        return {"norm": self.norm, "clip": self.clip, "seed": self.seed}

    def perturb(self, forward, x, y, epsilon):
        del forward, y
        z = keras.random.normal(ops.shape(x), seed=self.seed_generator)
        direction = ops.cast(norms.normalize_grad(z, self.norm), x.dtype)
        return self.project(x, x + epsilon * direction, epsilon)
