"""Attack strength and defense effect as `keras.metrics.Metric`s.

Each aggregates over batches (and replicas) like any Keras metric, so it can
be used in a custom loop, a callback or `compile(metrics=...)`-style code.
Inputs are batches: `x` and `x_adv` for the perturbation, the model's clean
and perturbed outputs (logits or probabilities) for the drift.
"""

import keras
from keras import ops

from keras_adv import losses
from keras_adv import norms


def _probabilities(y_pred, from_logits):
    return ops.exp(losses.log_probabilities(_two_classes(y_pred), from_logits))


def _two_classes(y_pred):
    y_pred = ops.cast(y_pred, "float32")
    if y_pred.shape[-1] != 1:
        return y_pred
    return ops.concatenate([-y_pred, y_pred], axis=-1)  # logit pair for a sigmoid


class _MeanOfExamples(keras.metrics.Mean):
    """A mean over examples of a per-example value computed by `values()`."""

    def update_state(self, *args, sample_weight=None):
        return super().update_state(self.values(*args), sample_weight=sample_weight)

    def values(self, *args):
        raise NotImplementedError


@keras.saving.register_keras_serializable(package="keras_adv")
class PerturbationNorm(keras.metrics.Metric):
    """Mean (or max) per-example norm of `x_adv - x`: the attack's strength.

    Args:
        norm: `"linf"` or `"l2"`. Defaults to `"linf"`.
        reduction: `"mean"` or `"max"` over examples. Defaults to `"mean"`.
        name: the metric's name. Defaults to `"perturbation_<norm>"`.

    Examples:

        >>> import numpy as np
        >>> metric = PerturbationNorm("l2")
        >>> metric.update_state(np.zeros((2, 4)), np.full((2, 4), 0.5))
        >>> float(metric.result())
        1.0
    """

    def __init__(
        self,
        norm: str = "linf",
        reduction: str = "mean",
        name: str | None = None,
        dtype: str | None = None,
    ):
        norms.check_norm(norm)
        if reduction not in ("mean", "max"):
            raise ValueError(
                "Argument `reduction` must be 'mean' or 'max'. "
                f"Received: reduction={reduction!r}"
            )
        suffix = "" if reduction == "mean" else "_max"
        super().__init__(name=name or f"perturbation_{norm}{suffix}", dtype=dtype)
        self.norm, self.reduction = norm, reduction
        self.total = self.add_variable((), initializer="zeros", name="total")
        self.count = self.add_variable((), initializer="zeros", name="count")
        self.maximum = self.add_variable((), initializer="zeros", name="maximum")

    def update_state(self, x, x_adv, sample_weight=None):
        delta = ops.cast(x_adv, "float32") - ops.cast(x, "float32")
        lengths = norms.lp_norm(delta, self.norm)
        if sample_weight is None:
            self.count.assign_add(ops.cast(ops.shape(lengths)[0], "float32"))
            self.total.assign_add(ops.sum(lengths))
        else:  # weighted mean; the max over examples of non-zero weight
            weight = ops.cast(ops.reshape(sample_weight, (-1,)), "float32")
            self.count.assign_add(ops.sum(weight))
            self.total.assign_add(ops.sum(lengths * weight))
            lengths = ops.where(weight > 0, lengths, ops.zeros_like(lengths))
        self.maximum.assign(ops.maximum(self.maximum, ops.max(lengths)))

    def result(self):
        if self.reduction == "max":
            return ops.convert_to_tensor(self.maximum)
        return ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        for variable in (self.total, self.count, self.maximum):
            variable.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "norm": self.norm, "reduction": self.reduction}


@keras.saving.register_keras_serializable(package="keras_adv")
class PredictionDrift(_MeanOfExamples):
    """Mean distance between clean and perturbed probability vectors.

    `update_state(y_pred, y_pred_adv)` with the model's outputs (logits or
    probabilities). Distances: `"l2"` and `"l1"` between the probability
    vectors, `"kl"` for `KL(p_clean || p_adv)`.

    Args:
        distance: `"l2"`, `"l1"` or `"kl"`. Defaults to `"l2"`.
        from_logits: whether outputs are logits; `None` detects it per batch.
            Defaults to `None`.
        name: the metric's name. Defaults to `"prediction_drift_<distance>"`.
    """

    def __init__(
        self,
        distance: str = "l2",
        from_logits: bool | None = None,
        name: str | None = None,
        dtype: str | None = None,
    ):
        if distance not in ("l2", "l1", "kl"):
            raise ValueError(
                "Argument `distance` must be 'l2', 'l1' or 'kl'. "
                f"Received: distance={distance!r}"
            )
        super().__init__(name=name or f"prediction_drift_{distance}", dtype=dtype)
        self.distance, self.from_logits = distance, from_logits

    def values(self, y_pred, y_pred_adv):
        return drift(y_pred, y_pred_adv, self.distance, self.from_logits)

    def get_config(self):
        return {
            **super().get_config(),
            "distance": self.distance,
            "from_logits": self.from_logits,
        }


def drift(y_pred, y_pred_adv, distance: str, from_logits: bool | None = None):
    """Per-example `"l2"` / `"l1"` distance of probabilities, or `"kl"`."""
    if distance == "kl":
        return losses.kl_divergence(
            _two_classes(y_pred), _two_classes(y_pred_adv), from_logits
        )
    gap = _probabilities(y_pred, from_logits) - _probabilities(y_pred_adv, from_logits)
    if distance == "l1":
        return ops.sum(ops.abs(gap), axis=-1)
    return ops.sqrt(ops.sum(ops.square(gap), axis=-1))


def flips(y_pred, y_pred_adv):
    """Per example, 1.0 where the predicted class differs, else 0.0."""
    changed = ops.not_equal(_predicted_class(y_pred), _predicted_class(y_pred_adv))
    return ops.cast(changed, "float32")


def hits(y_true, y_pred):
    """Per example, 1.0 where the prediction is right (class ids or one-hot)."""
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] > 1:
        labels = ops.argmax(y_true, axis=-1)
    else:
        labels = ops.reshape(y_true, (-1,))
    return ops.cast(
        ops.equal(ops.cast(labels, "int32"), _predicted_class(y_pred)), "float32"
    )


def _predicted_class(y_pred):
    if y_pred.shape[-1] == 1:  # one sigmoid unit: logits or probabilities
        threshold = ops.where(losses.is_probability(y_pred), 0.5, 0.0)
        return ops.cast(ops.cast(y_pred[:, 0], "float32") > threshold, "int32")
    return ops.cast(ops.argmax(y_pred, axis=-1), "int32")


@keras.saving.register_keras_serializable(package="keras_adv")
class FlipRate(_MeanOfExamples):
    """Share of examples whose predicted class changes under the attack.

    `update_state(y_pred, y_pred_adv)` with the model's outputs.
    """

    def __init__(self, name: str = "flip_rate", dtype: str | None = None):
        super().__init__(name=name, dtype=dtype)

    def values(self, y_pred, y_pred_adv):
        return flips(y_pred, y_pred_adv)


@keras.saving.register_keras_serializable(package="keras_adv")
class RobustAccuracy(_MeanOfExamples):
    """Accuracy on perturbed inputs: `update_state(y_true, y_pred_adv)`.

    Labels are class ids (`(batch,)` or `(batch, 1)`) or one-hot rows.
    """

    def __init__(self, name: str = "robust_accuracy", dtype: str | None = None):
        super().__init__(name=name, dtype=dtype)

    def values(self, y_true, y_pred_adv):
        return hits(y_true, y_pred_adv)
