"""The default attack loss: crossentropy matched to the model's output."""

from keras import ops


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


def _crossentropy(y_true, y_pred, from_logits):
    if y_pred.shape[-1] == 1:
        y_true = ops.reshape(ops.cast(y_true, y_pred.dtype), ops.shape(y_pred))
        values = ops.binary_crossentropy(y_true, y_pred, from_logits=from_logits)
        return ops.reshape(values, (-1,))
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] != 1:
        y_true = ops.cast(y_true, y_pred.dtype)
        return ops.categorical_crossentropy(y_true, y_pred, from_logits=from_logits)
    y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    return ops.sparse_categorical_crossentropy(y_true, y_pred, from_logits=from_logits)


def crossentropy(y_true, y_pred, from_logits=None):
    """Per-example crossentropy for class labels or one-hot targets.

    Args:
        y_true: integer class labels `(batch,)` or `(batch, 1)`, or one-hot /
            soft targets shaped like `y_pred`.
        y_pred: model outputs `(batch, classes)`; `(batch, 1)` is binary.
        from_logits: whether `y_pred` holds logits. `None` decides per batch
            with `is_probability`. Defaults to `None`.

    Returns:
        A `(batch,)` tensor of losses.
    """
    y_pred = ops.cast(y_pred, "float32")
    if from_logits is not None:
        return _crossentropy(y_true, y_pred, from_logits)
    # Both branches are finite (Keras clips probabilities before the log),
    # so `where` passes no NaN gradient from the branch it discards.
    return ops.where(
        is_probability(y_pred),
        _crossentropy(y_true, y_pred, False),
        _crossentropy(y_true, y_pred, True),
    )
