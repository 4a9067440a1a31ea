"""The default attack loss: crossentropy matched to the model's output."""

from keras import ops

_EPSILON = 1e-7  # probabilities are clipped to [eps, 1 - eps] before the log


def is_probability(y_pred):
    """Whether a batch of outputs looks like probabilities rather than logits.

    Multi-class outputs are probabilities when every value lies in [0, 1] and
    every row sums to 1 (within 1e-3). Single-unit (binary) outputs only
    need to lie in [0, 1], which small logits can too: pass `from_logits`
    explicitly for such models.
    """
    inside = ops.logical_and(ops.all(y_pred >= 0.0), ops.all(y_pred <= 1.0))
    if y_pred.shape[-1] == 1:
        return inside
    sums = ops.sum(y_pred, axis=-1)
    return ops.logical_and(inside, ops.all(ops.abs(sums - 1.0) < 1e-3))


def _log_probabilities(y_pred, from_logits):
    """`(log p, log (1 - p))` for binary outputs, `(log p, None)` otherwise."""
    if y_pred.shape[-1] == 1:
        if from_logits:
            return ops.log_sigmoid(y_pred), ops.log_sigmoid(-y_pred)
        p = ops.clip(y_pred, _EPSILON, 1.0 - _EPSILON)
        return ops.log(p), ops.log(1.0 - p)
    if from_logits:
        return ops.log_softmax(y_pred, axis=-1), None
    return ops.log(ops.clip(y_pred, _EPSILON, 1.0)), None


def _are_class_ids(y_true, y_pred):
    """Whether `y_true` holds class ids of multi-class outputs (not one-hot)."""
    one_hot_given = len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] > 1
    return y_pred.shape[-1] != 1 and not one_hot_given


def _labels(y_true):
    """Class ids as a flat int32 vector."""
    return ops.reshape(ops.cast(y_true, "int32"), (-1,))


def label_targets(y_true, y_pred):
    """Labels as a float target shaped like `y_pred` (one-hot for class ids)."""
    classes = y_pred.shape[-1]
    if not _are_class_ids(y_true, y_pred):
        return ops.reshape(ops.cast(y_true, y_pred.dtype), ops.shape(y_pred))
    return ops.one_hot(_labels(y_true), classes, dtype=y_pred.dtype)


def crossentropy(y_true, y_pred, from_logits=None):
    """Per-example crossentropy for class labels or one-hot targets.

    Args:
        y_true: integer class labels `(batch,)` or `(batch, 1)`, or one-hot /
            soft targets shaped like `y_pred`.
        y_pred: model outputs `(batch, classes)`; `(batch, 1)` is binary.
        from_logits: whether `y_pred` holds logits. `None` decides per batch
            with `is_probability`. Defaults to `None`.

    Returns:
        A `(batch,)` float32 tensor of losses.
    """
    y_pred = ops.cast(y_pred, "float32")
    if from_logits and len(y_pred.shape) == 2 and _are_class_ids(y_true, y_pred):
        # The backend's fused op (torch's cross_entropy, TensorFlow's sparse
        # softmax crossentropy): the same values in fewer ops, which eager
        # PyTorch pays per op on every attack step.
        return ops.sparse_categorical_crossentropy(
            _labels(y_true), y_pred, from_logits=True
        )
    if from_logits is None:
        # Both branches are finite, so `where` passes no NaN gradient from the
        # branch it discards.
        as_probs = is_probability(y_pred)
        log_p, log_q = _log_probabilities(y_pred, False)
        logit_p, logit_q = _log_probabilities(y_pred, True)
        log_p = ops.where(as_probs, log_p, logit_p)
        if log_q is not None:
            log_q = ops.where(as_probs, log_q, logit_q)
    else:
        log_p, log_q = _log_probabilities(y_pred, from_logits)
    target = label_targets(y_true, y_pred)
    values = target * log_p
    if log_q is not None:
        values = values + (1.0 - target) * log_q
    return -ops.sum(values, axis=-1)


def log_probabilities(y_pred, from_logits=None):
    """Per-class log-probabilities of multi-class outputs (logits or probabilities)."""
    y_pred = ops.cast(y_pred, "float32")
    if from_logits is None:
        return ops.where(
            is_probability(y_pred),
            _log_probabilities(y_pred, False)[0],
            _log_probabilities(y_pred, True)[0],
        )
    return _log_probabilities(y_pred, from_logits)[0]


def kl_divergence(clean, perturbed, from_logits=None):
    """Per-example `KL(p_clean || p_perturbed)` between two batches of outputs.

    Single-unit (binary) outputs are treated as two classes.
    """
    if clean.shape[-1] == 1:
        clean = _binary_as_two_classes(clean, from_logits)
        perturbed = _binary_as_two_classes(perturbed, from_logits)
        from_logits = False
    log_p = log_probabilities(clean, from_logits)
    log_q = log_probabilities(perturbed, from_logits)
    return ops.sum(ops.exp(log_p) * (log_p - log_q), axis=-1)


def _binary_as_two_classes(y_pred, from_logits):
    y_pred = ops.cast(y_pred, "float32")
    if from_logits is None:
        p = ops.where(is_probability(y_pred), y_pred, ops.sigmoid(y_pred))
    else:
        p = ops.sigmoid(y_pred) if from_logits else y_pred
    return ops.concatenate([1.0 - p, p], axis=-1)


def _class_scores(y_true, y_pred, from_logits, min_classes, name):
    """`(z, one_hot)`: log-probabilities (logits up to a per-example shift)."""
    classes = y_pred.shape[-1]
    if classes is None or classes < min_classes:
        raise ValueError(
            f"The {name} loss needs outputs with at least {min_classes} classes. "
            f"Received: outputs of shape {tuple(y_pred.shape)}"
        )
    scores = log_probabilities(y_pred, from_logits)
    return scores, label_targets(y_true, scores)


def _true_and_best_other(scores, one_hot):
    true = ops.sum(scores * one_hot, axis=-1)
    other = ops.max(ops.where(one_hot > 0, -1e30, scores), axis=-1)
    return true, other


def margin(y_true, y_pred, from_logits=None):
    """Per-example `z_y - max_{i != y} z_i`: negative once the example is misclassified.

    `z` are log-probabilities, which differ from the logits by a per-example
    shift the margin does not see, so logits and probabilities give the same
    value (up to the clipping of probabilities near 0).
    """
    scores, one_hot = _class_scores(y_true, y_pred, from_logits, 2, "margin")
    true, other = _true_and_best_other(scores, one_hot)
    return true - other


def dlr(y_true, y_pred, from_logits=None):
    """Per-example difference of logits ratio, to maximise.

    `-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3)`, with `z` sorted so that
    `z_pi1 >= z_pi2 >= ...`. Invariant to shifting and rescaling the logits,
    so saturated outputs do not flatten it. Paper: "Reliable evaluation of
    adversarial robustness with an ensemble of diverse parameter-free
    attacks", Croce & Hein 2020, arXiv:2003.01690. Needs three classes.
    """
    scores, one_hot = _class_scores(y_true, y_pred, from_logits, 3, "DLR")
    true, other = _true_and_best_other(scores, one_hot)
    top = ops.top_k(scores, 3)[0]
    return -(true - other) / (top[:, 0] - top[:, 2] + 1e-12)


def targeted_dlr(y_true, y_target, y_pred, from_logits=None):
    """Per-example targeted DLR, to maximise: reach class `y_target` from `y_true`.

    `-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)` (Croce & Hein 2020).
    Needs four classes.
    """
    scores, one_hot = _class_scores(y_true, y_pred, from_logits, 4, "targeted DLR")
    target = label_targets(y_target, scores)
    top = ops.top_k(scores, 4)[0]
    gap = ops.sum(scores * one_hot, axis=-1) - ops.sum(scores * target, axis=-1)
    return -gap / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + 1e-12)


# Loss names an attack accepts in place of a callable.
NAMED = {"crossentropy": crossentropy, "ce": crossentropy, "dlr": dlr}
