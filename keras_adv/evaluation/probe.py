"""A fixed probe set that callbacks attack each epoch, compiled once per model."""

import dataclasses
import weakref

import keras
import numpy as np
from keras import ops

from keras_adv import argument_validation as validation
from keras_adv import backend
from keras_adv import metrics
from keras_adv.attacks import layer_perturbation
from keras_adv.metrics import hits

_ARGUMENTS = ("x", "x_adv", "y", "y_pred", "y_pred_adv")


def _materialize(data, max_examples):
    """`(x, y)` NumPy arrays from an `(x, y)` pair or an iterable of batches."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and hasattr(data[0], "shape"):
        x, y = (ops.convert_to_numpy(part) for part in data)
        return x[:max_examples], y[:max_examples]
    if isinstance(data, (tuple, list)) or not hasattr(data, "__iter__"):
        raise ValueError(
            "Argument `data` must be an (x, y) pair of arrays or a dataset of "
            f"(x, y) batches. Received: data of type {type(data).__name__}"
        )
    xs, ys, count = [], [], 0
    for batch in data:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError(
                "Argument `data` must yield (x, y) batches. "
                f"Received a batch of type {type(batch).__name__}"
            )
        xs.append(ops.convert_to_numpy(batch[0]))
        ys.append(ops.convert_to_numpy(batch[1]))
        count += len(xs[-1])
        if count >= max_examples:
            break
    if not xs:
        raise ValueError("Argument `data` must hold at least one example.")
    return np.concatenate(xs)[:max_examples], np.concatenate(ys)[:max_examples]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one attack at one budget did to a probe set.

    Attributes:
        values: `{metric name: value}` over the probe set.
        correct: per example, whether the prediction on the attacked input
            is right (a boolean NumPy array).
        clean: per example, whether the prediction on the clean input is
            right, from the same run (no second clean pass).
    """

    values: dict
    correct: np.ndarray
    clean: np.ndarray


class ProbeSet:
    """Examples fixed at construction, checked once, attacked in batches.

    The one evaluation engine: callbacks attack a probe set each epoch,
    `evaluate_robustness` and the sweep each attack and budget, the sanity
    checks their extra runs. One compiled call per batch runs the attack,
    the model on the clean and attacked inputs and the metrics; it is
    compiled once per model, attack and metric set (a last, smaller batch
    is a second shape), and the budget is a tensor, so another epsilon does
    not recompile.

    Args:
        data: an `(x, y)` pair of arrays or tensors, or a `tf.data.Dataset`
            (any iterable) of `(x, y)` batches.
        max_examples: at most this many examples are kept. Defaults to 512.
        batch_size: examples per compiled call. Defaults to 256.
        perturb: attack the output of a layer instead of the inputs:
            `"embeddings"`, a layer name or a layer (see
            `keras_adv.attacks.layer_perturbation`); the inputs may then be
            token ids. The metrics' `x` is then zeros and `x_adv` the
            perturbation, so perturbation norms are measured at the layer.
            Defaults to `None` (the inputs).
        relative_budget: with `perturb`, budgets are shares of each
            example's norm at the layer. Defaults to `False` (absolute).
        per_token: with `perturb`, each token of the layer's output gets
            the budget (see `AdversarialModel`); the norms measured stay per
            example. Defaults to `False`.
    """

    def __init__(
        self,
        data,
        max_examples=512,
        batch_size=256,
        perturb=None,
        relative_budget=False,
        per_token=False,
    ):
        max_examples = validation.check_positive(
            max_examples, "max_examples", integer=True
        )
        self.batch_size = validation.check_positive(
            batch_size, "batch_size", integer=True
        )
        self.x, self.y = _materialize(data, max_examples)
        if len(self.x) != len(self.y) or not len(self.x):
            raise ValueError(
                "Argument `data` must hold as many labels as inputs, at least "
                f"one. Received: x of {len(self.x)} and y of {len(self.y)}"
            )
        self.perturb = perturb
        self.relative_budget = layer_perturbation.check_relative_budget(
            relative_budget, perturb is not None, perturb
        )
        self.per_token = layer_perturbation.check_per_token(
            per_token, perturb is not None, perturb
        )
        if validation.is_float(self.x):  # token ids stay integers
            self.x = self.x.astype(keras.backend.floatx(), copy=False)
            if not np.all(np.isfinite(self.x)):
                raise ValueError(
                    "Argument `data` holds NaN or Inf inputs; a probe set must be "
                    "finite. Remove or impute them."
                )
        if self.y.ndim == 2 and self.y.shape[1] == 1:  # a column of class ids
            self.y = self.y.reshape(-1)
        self._compiled = weakref.WeakKeyDictionary()
        self._batches = None

    def __len__(self):
        return len(self.x)

    def check_range(self, clip):
        """Refuses examples outside `clip`, the valid range of an attack to run.

        An attack projects its result into `clip`, so examples outside it
        would be "perturbed" by the rescaling, not by the attack. Nothing to
        check at a layer (`perturb`): its outputs are not clipped.
        """
        if self.perturb is not None:
            return
        self._check_float()
        validation.check_value_range(self.x, clip, "data")

    def evaluate(self, model, attack, metrics, epsilon=None):
        """Attacks the probe set and returns `{metric name: value}`.

        Args:
            model: a `keras.Model` with one output (logits or probabilities).
            attack: the `Attack` to run.
            metrics: `(metric, arguments)` pairs; `arguments` names what the
                metric's `update_state` takes, from `"x"`, `"x_adv"`, `"y"`,
                `"y_pred"` and `"y_pred_adv"`.
            epsilon: a budget overriding `attack.epsilon`, passed as a tensor
                (no retracing per value). Defaults to `attack.epsilon`.
        """
        return self.run(model, attack, metrics, epsilon).values

    def run(self, model, attack, metrics=(), epsilon=None):
        """Attacks the probe set; returns an `Outcome` (metrics and per-example hits).

        Arguments as for `evaluate`; `metrics` may be empty when only the
        per-example results are wanted.
        """
        metrics = list(metrics)
        run = self._function(model, attack, metrics)
        budget = ops.convert_to_tensor(
            attack.epsilon if epsilon is None else epsilon, "float32"
        )
        for metric, _ in metrics:
            metric.reset_state()
        correct, clean = [], []
        for x, y in self._as_batches():
            attacked, right = run(x, y, budget)
            correct.append(ops.convert_to_numpy(attacked) > 0.5)
            clean.append(ops.convert_to_numpy(right) > 0.5)
        values = {m.name: float(ops.convert_to_numpy(m.result())) for m, _ in metrics}
        return Outcome(values, np.concatenate(correct), np.concatenate(clean))

    def correct(self, model, attack, epsilon):
        """Per example, whether `attack` at `epsilon` left the prediction right."""
        return self.run(model, attack, (), epsilon).correct

    def correct_among(self, model, attack, epsilon, among):
        """`correct`, attacking only the examples where `among` is True.

        The others come back False (AutoAttack's cascade: an attack runs on
        the examples still robust, so a broken one costs nothing more).
        Batches of the chosen examples are padded to the probe's first
        batch's size (repeating an example) and cut after, so the compiled
        call keeps the shape it was traced with.
        """
        among = np.asarray(among, dtype=bool)
        result = np.zeros(len(self), dtype=bool)
        chosen = np.flatnonzero(among)
        if not chosen.size:
            return result
        run = self._function(model, attack, [])
        budget = ops.convert_to_tensor(epsilon, "float32")
        size = min(self.batch_size, len(self))
        for start in range(0, chosen.size, size):
            part = chosen[start : start + size]
            padded = np.concatenate([part, np.full(size - part.size, part[0])])
            attacked, _ = run(
                ops.convert_to_tensor(self.x[padded]),
                ops.convert_to_tensor(self.y[padded]),
                budget,
            )
            result[part] = (ops.convert_to_numpy(attacked) > 0.5)[: part.size]
        return result

    def clean_correct(self, model):
        """Per example, whether the prediction on the clean input is right."""
        outputs = self.predict(model, self.x)
        return ops.convert_to_numpy(hits(ops.convert_to_tensor(self.y), outputs)) > 0.5

    def predict(self, model, x):
        """The model's outputs on `x` (inference mode, this probe's batch size)."""
        return model.predict(x, batch_size=self.batch_size, verbose=0)

    def _as_batches(self):
        """The examples as backend tensors in batches, converted once."""
        if self._batches is None:
            starts = range(0, len(self.x), self.batch_size)
            self._batches = [
                (
                    ops.convert_to_tensor(self.x[i : i + self.batch_size]),
                    ops.convert_to_tensor(self.y[i : i + self.batch_size]),
                )
                for i in starts
            ]
        return self._batches

    def _check_float(self):
        if self.perturb is None and not validation.is_float(self.x):
            raise ValueError(
                "Argument `data` must have float inputs (attacks differentiate "
                f"with respect to them). Received: x of dtype {self.x.dtype}. "
                "For token ids, attack the embeddings: perturb='embeddings'."
            )

    def _function(self, model, attack, metrics):
        self._check_float()
        per_model = self._compiled.setdefault(model, {})
        key = (id(attack), tuple(id(metric) for metric, _ in metrics))
        if key not in per_model:
            num_classes = model(self.x[:1], training=False).shape[-1]
            validation.check_labels(self.y, num_classes)
            per_model[key] = _compile(
                model,
                attack,
                metrics,
                self.perturb,
                self.relative_budget,
                self.per_token,
            )
        return per_model[key]


def _compile(model, attack, metrics, perturb=None, relative=False, per_token=False):
    """One compiled call per batch: attack, clean and attacked outputs, metrics.

    With `perturb`, the attack runs at that layer's output, unclipped.
    """
    for _, arguments in metrics:
        unknown = set(arguments) - set(_ARGUMENTS)
        if unknown:
            raise ValueError(f"Unknown metric arguments {sorted(unknown)}.")
    model_ref = weakref.ref(model)

    def forward(inputs):
        return model_ref()(inputs, training=False)

    site = None
    if perturb is not None:
        site = layer_perturbation.at(model, perturb)
        layer_perturbation.check_per_token(per_token, True, perturb, [attack])
        attack = attack.clone(clip=None)  # a layer's outputs are unbounded

    def batch(x, y, epsilon):
        if site is None:
            x_adv, y_pred = attack.perturb_and_predict(forward, x, y, epsilon)
            x_adv = ops.stop_gradient(x_adv)
            y_pred_adv = forward(x_adv)
        else:
            zeros, at_layer, applied = site.prepare(forward, x, relative, per_token)
            delta, y_pred = attack.perturb_and_predict(at_layer, zeros, y, epsilon)
            x_adv = ops.stop_gradient(applied(delta))
            # norms are measured per example, at the layer's shape
            y_pred_adv, x = site.forward(forward, x, x_adv), ops.zeros_like(x_adv)
        values = {"x": x, "x_adv": x_adv, "y": y, "y_pred": ops.stop_gradient(y_pred)}
        values["y_pred_adv"] = y_pred_adv
        for metric, arguments in metrics:
            metric.update_state(*(values[name] for name in arguments))
        return hits(y, values["y_pred_adv"]), hits(y, values["y_pred"])

    state = list(model.variables) + [attack.seed_generator.state]
    for metric, _ in metrics:
        state.extend(metric.variables)
    return backend.compile_fn(batch, state)


def standard_metrics(from_logits=None):
    """The attack-strength and defense-effect metrics, as `(metric, arguments)`.

    What `AdversarialMonitor` logs (with an `adv_` prefix) and what the sweep
    records per cell: mean and max perturbation norms, prediction drift (L2,
    L1, KL), flip rate, robust and clean accuracy.
    """
    drift = ("y_pred", "y_pred_adv")
    return [
        (metrics.PerturbationNorm("linf"), ("x", "x_adv")),
        (metrics.PerturbationNorm("l2"), ("x", "x_adv")),
        (metrics.PerturbationNorm("linf", "max"), ("x", "x_adv")),
        (metrics.PerturbationNorm("l2", "max"), ("x", "x_adv")),
        (metrics.PredictionDrift("l2", from_logits, name="prediction_drift"), drift),
        (metrics.PredictionDrift("l1", from_logits), drift),
        (metrics.PredictionDrift("kl", from_logits, name="kl"), drift),
        (metrics.FlipRate(), drift),
        (metrics.RobustAccuracy(), ("y", "y_pred_adv")),
        (metrics.RobustAccuracy(name="clean_accuracy"), ("y", "y_pred")),
    ]


def check_single_output(model, name):
    """Raises `ValueError` unless `model` has one output tensor."""
    outputs = getattr(model, "outputs", None)
    if outputs is not None and len(outputs) != 1:
        raise ValueError(
            f"{name} needs a model with one output (logits or probabilities); "
            f"{model.name!r} has {len(outputs)}. Wrap the output to monitor: "
            "keras.Model(model.inputs, model.outputs[0])."
        )
    return model


def own_attack(model):
    """A fresh copy of an `AdversarialModel`'s attack (own random state), or None."""
    attack = getattr(model, "attack", None)
    if attack is None or not hasattr(attack, "perturb"):
        return None
    return attack.clone()
