"""Auto-PGD (APGD): PGD with momentum and a step size that adapts by itself."""

from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from keras_adv import argument_validation as validation
from keras_adv import backend
from keras_adv import metrics
from keras_adv import norms
from keras_adv.attacks.attack import Attack


def checkpoints(steps):
    """Iterations after which APGD may halve its step, as in Croce & Hein 2020.

    Checkpoints `w_j = ceil(p_j * steps)` with `p_0 = 0`, `p_1 = 0.22` and
    `p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)`: intervals of 22% of
    the budget shrinking by 3% down to 6% (in whole iterations, at least 1).
    Returns `(is_checkpoint, interval)`: per iteration, whether it ends an
    interval and that interval's length.
    """
    interval = max(int(0.22 * steps), 1)
    shrink, shortest = max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    is_checkpoint = np.zeros(steps, bool)
    lengths = np.ones(steps, "float32")
    i = interval - 1
    while i < steps:
        is_checkpoint[i], lengths[i] = True, interval
        interval = max(interval - shrink, shortest)
        i += interval
    return is_checkpoint, lengths


def succeeded(outputs, y, targeted):
    """Per example, whether the attack's goal is met (misclassified / on target)."""
    right = metrics.hits(y, outputs) > 0.5
    return right if targeted else ops.logical_not(right)


@keras.saving.register_keras_serializable(package="keras_adv")
class APGD(Attack):
    """Auto-PGD: momentum steps whose size halves when progress stalls.

    Paper: "Reliable evaluation of adversarial robustness with an ensemble of
    diverse parameter-free attacks", Croce & Hein 2020, arXiv:2003.01690
    (APGD-CE with `loss="ce"`, APGD-DLR with `loss="dlr"`).

    Threat model: `||x_adv - x|| <= epsilon` in `norm`, `x_adv` inside `clip`.
    The step starts at `2 * epsilon`; each step is a projected gradient step
    followed by momentum `0.75` on the previous move. At the checkpoints (see
    `checkpoints`) an example's step is halved, and it restarts from its best
    point, when fewer than `rho` of the steps since the last checkpoint raised
    its loss, or when the step was not halved last time and the best loss did
    not improve since. Each example returns its first successful point
    (misclassified, or on target when `targeted`) if it found one, else its
    highest-loss point: never worse than its start.

    L1 is the version of "Mind the box: l1-APGD for sparse adversarial
    attacks on image classifiers", Croce & Hein 2021, arXiv:2103.01208: the
    step starts at `epsilon` and moves, without momentum, the coordinates
    whose `|gradient|` is in the top `k` share (20% at first; sign steps
    dividing the step size among them), then projects exactly onto the L1
    ball intersected with `clip` (`norms.project_l1_box`). Every 4% of the
    steps, `k` becomes the share of coordinates the best point moved over
    1.5; where that share fell by over 5% the step goes back to `epsilon`
    and the run to its best point, elsewhere the step shrinks by 1.5 (to
    `epsilon / 10` at least). AutoAttack's L1 runs also shrink a larger
    budget onto `epsilon` (`use_largereps`); this does not.

    Args:
        epsilon: the perturbation budget, on the scale of the inputs.
        norm: `"linf"`, `"l2"` or `"l1"` (see below). Defaults to `"linf"`.
        steps: iterations (one forward and backward pass each, plus one for
            the start). Defaults to 100.
        restarts: independent random starts; an example keeps a success over
            a higher loss. Defaults to 1.
        rho: the share of loss increases under which the step is halved.
            Defaults to 0.75.
        random_start: start from a uniform draw in the ball instead of `x`.
            Defaults to `True`.
        loss: `"ce"` (crossentropy), `"dlr"` (needs 3 classes) or any attack
            loss (see `keras_adv.attacks.Attack`). Defaults to `"ce"`.
        eot_draws: for models random at inference (expectation over
            transformation, Athalye et al. 2018): each step's gradient is
            the mean over this many forward and backward passes, each with
            the model's own new random draw (AutoAttack's `rand` version
            uses 20). Defaults to 1.

    `clip`, `targeted`, `from_logits` and `seed` are as in
    `keras_adv.attacks.Attack`.

    Examples:

        >>> import numpy as np, keras
        >>> from keras_adv.attacks import APGD
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x = np.random.rand(8, 4).astype("float32")
        >>> x_adv = APGD(0.1, steps=10, seed=0).generate(model, x, np.arange(8) % 3)
        >>> bool(np.abs(x_adv - x).max() <= 0.1 + 1e-6)
        True
    """

    def __init__(
        self,
        epsilon: float,
        norm: str = "linf",
        steps: int = 100,
        restarts: int = 1,
        rho: float = 0.75,
        random_start: bool = True,
        clip: tuple[float, float] | None = (0.0, 1.0),
        targeted: bool = False,
        loss: str | Callable = "ce",
        from_logits: bool | None = None,
        seed: int | None = None,
        eot_draws: int = 1,
    ):
        super().__init__(epsilon, norm, clip, targeted, loss, from_logits, seed)
        self.eot_draws = validation.check_positive(eot_draws, "eot_draws", integer=True)
        self.steps = validation.check_positive(steps, "steps", integer=True)
        self.restarts = validation.check_positive(restarts, "restarts", integer=True)
        self.rho = validation.check_positive(rho, "rho")
        if self.rho > 1:
            raise ValueError(f"Argument `rho` must be in (0, 1]. Received: rho={rho}")
        self.random_start = validation.check_bool(random_start, "random_start")
        if self.restarts > 1 and not self.random_start:
            raise ValueError(
                "Argument `restarts` above 1 needs `random_start=True`. "
                f"Received: restarts={restarts}"
            )

    def perturb(self, forward, x, y, epsilon):
        objective = self.output_objective(y)

        def success(outputs):
            return succeeded(outputs, y, self.targeted)

        return self.best_of_restarts(forward, objective, success, x, epsilon)[0]

    def best_of_restarts(self, forward, objective, success, x, epsilon, draw=None):
        """`(x_adv, success, loss)` over `restarts` runs: a success first, then loss.

        `draw` runs the random starts' draws when called inside a loop (see
        `Attack.loop_drawing`).
        """
        if self.random_start:
            starts = (draw or (lambda fn: fn()))(
                lambda: self.random_start_points(x, epsilon, self.restarts)
            )
        else:
            starts = ops.expand_dims(x, 0)
        run = self.single_run(forward, objective, success, x, starts[0], epsilon)
        if self.restarts == 1:
            return run

        def restart(r, best):
            start = ops.take(starts, r, axis=0)
            new = self.single_run(forward, objective, success, x, start, epsilon)
            return keep_better(best, new)

        return ops.fori_loop(1, self.restarts, restart, run)

    def single_run(self, forward, objective, success, x, start, epsilon):
        """One APGD run from `start`: `(x_adv, success, best loss)` per example."""
        is_checkpoint, lengths = checkpoints(self.steps)
        is_checkpoint = ops.convert_to_tensor(is_checkpoint)
        lengths = ops.convert_to_tensor(lengths)
        per_example = (-1,) + (1,) * (len(x.shape) - 1)

        def evaluate(point):
            def fn(z):
                outputs = forward(z)
                values = objective(outputs)
                return ops.sum(values), (values, success(outputs))

            (_, (values, ok)), grad = backend.value_and_input_grad(
                fn, point, has_aux=True
            )
            for _ in range(self.eot_draws - 1):  # the mean over the draws
                (_, (more, more_ok)), more_grad = backend.value_and_input_grad(
                    fn, point, has_aux=True
                )
                values, ok, grad = values + more, more_ok, grad + more_grad
            if self.eot_draws > 1:
                values = values / self.eot_draws
                grad = grad / self.eot_draws
            return values, ok, grad

        def where(mask, a, b):
            return ops.where(ops.reshape(mask, per_example), a, b)

        loss, ok, grad = evaluate(start)
        l1 = self.norm == "l1"
        full = (1.0 if l1 else 2.0) * epsilon  # the first step's size
        size = ops.ones_like(loss) * full
        state = {
            "x": start, "prev": start, "grad": grad, "size": size,
            "best": start, "best_grad": grad, "best_loss": loss,
            "found": start, "ok": ok, "last_loss": loss,
            "rises": ops.zeros_like(loss), "check_loss": loss,
            "halved": ops.ones_like(ok),
        }  # fmt: skip
        if l1:
            _, features = norms.flatten(x)
            state["share"] = ops.ones_like(loss) * 0.2
            state["moved"] = ops.ones_like(loss) * features
            interval = max(int(0.04 * self.steps), 1)

        def step(i, s):
            s = dict(s)
            size = ops.reshape(s["size"], per_example)
            if l1:  # sparse sign steps, no momentum
                direction = ops.cast(sparse_direction(s["grad"], s["share"]), x.dtype)
                new = self.project(x, s["x"] + size * direction, epsilon)
            else:
                a = ops.where(ops.equal(i, 0), 1.0, 0.75)
                direction = ops.cast(
                    norms.normalize_grad(s["grad"], self.norm), x.dtype
                )
                moved = self.project(x, s["x"] + size * direction, epsilon)
                new = self.project(
                    x,
                    s["x"] + a * (moved - s["x"]) + (1.0 - a) * (s["x"] - s["prev"]),
                    epsilon,
                )
            s["prev"] = s["x"]
            loss, ok, grad = evaluate(new)
            s["found"] = where(ok, new, s["found"])
            s["ok"] = ops.logical_or(s["ok"], ok)
            s["rises"] = s["rises"] + ops.cast(loss > s["last_loss"], "float32")
            s["last_loss"] = loss
            better = loss > s["best_loss"]
            s["best"] = where(better, new, s["best"])
            s["best_grad"] = where(better, grad, s["best_grad"])
            s["best_loss"] = ops.maximum(loss, s["best_loss"])
            if l1:
                return self._l1_checkpoint(i, s, x, new, grad, full, interval, where)
            # At a checkpoint: halve stalled steps and restart them from the best.
            check = ops.take(is_checkpoint, i)
            oscillating = s["rises"] <= ops.take(lengths, i) * self.rho
            no_gain = ops.logical_and(
                ops.logical_not(s["halved"]), s["check_loss"] >= s["best_loss"]
            )
            halve = ops.logical_and(check, ops.logical_or(oscillating, no_gain))
            s["halved"] = ops.where(check, halve, s["halved"])
            s["check_loss"] = ops.where(check, s["best_loss"], s["check_loss"])
            s["rises"] = ops.where(check, 0.0, s["rises"])
            s["size"] = ops.where(halve, s["size"] / 2.0, s["size"])
            s["x"] = where(halve, s["best"], new)
            s["grad"] = where(halve, s["best_grad"], grad)
            return s

        s = ops.fori_loop(0, self.steps, step, state)
        return where(s["ok"], s["found"], s["best"]), s["ok"], s["best_loss"]

    def _l1_checkpoint(self, i, s, x, new, grad, full, interval, where):
        """Every `interval` steps: L1-APGD's sparsity and step-size updates."""
        check = ops.equal(ops.mod(i + 1, interval), 0)
        moved = ops.sum(
            ops.cast(ops.abs(norms.flatten(s["best"] - x)[0]) > 0, "float32"), axis=-1
        )
        sparser = ops.logical_and(check, moved / ops.maximum(s["moved"], 1.0) < 0.95)
        _, features = norms.flatten(x)
        s["share"] = ops.where(check, moved / features / 1.5, s["share"])
        size = ops.where(sparser, full, s["size"] / 1.5)
        size = ops.clip(size, full / 10.0, full)
        s["size"] = ops.where(check, size, s["size"])
        s["moved"] = ops.where(check, moved, s["moved"])
        s["x"] = where(sparser, s["best"], new)
        s["grad"] = where(sparser, s["best_grad"], grad)
        return s

    def get_config(self):
        return {
            **super().get_config(),
            "steps": self.steps,
            "restarts": self.restarts,
            "rho": self.rho,
            "random_start": self.random_start,
            "eot_draws": self.eot_draws,
        }


def sparse_direction(grad, share):
    """L1-APGD's step direction: `sign(g)` on the top `share` of `|g|`, L1 norm 1.

    Per example, the coordinates whose `|g|` is at or above the value at
    rank `(1 - share) * d` of the sorted `|g|` (of `d` coordinates)
    (`norms.sign_of_largest`).
    """
    _, size = norms.flatten(grad)
    rank = ops.clip(ops.floor((1.0 - share) * size), 0, size - 1)
    return norms.sign_of_largest(grad, ops.cast(rank, "int32"))


def keep_better(best, new):
    """Per example, `new` where it succeeds and `best` does not, or ties it on
    success with a higher loss; else `best`. Both are `(x, success, loss)`."""
    x, ok, loss = best
    new_x, new_ok, new_loss = new
    take = ops.logical_or(
        ops.logical_and(new_ok, ops.logical_not(ok)),
        ops.logical_and(ops.equal(new_ok, ok), new_loss > loss),
    )
    take_x = ops.reshape(take, (-1,) + (1,) * (len(x.shape) - 1))
    return (
        ops.where(take_x, new_x, x),
        ops.logical_or(ok, new_ok),
        ops.where(take, new_loss, loss),
    )
