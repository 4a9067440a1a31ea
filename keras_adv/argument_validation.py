"""Argument and input checks shared by attacks, models and callbacks.

Each raises `ValueError` in Keras's words: the argument, the expectation,
then `Received: name=value`.
"""

import math
import numbers

import keras
import numpy as np
from keras import ops

from keras_adv import backend


def _fail(name, expectation, value):
    raise ValueError(f"Argument `{name}` {expectation}. Received: {name}={value!r}")


def is_number(value):
    """A real number (Python or NumPy), not a boolean."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_bool(value, name):
    """`True` or `False` (NumPy booleans too); a string such as "no" is refused."""
    if not isinstance(value, (bool, np.bool_)):
        _fail(name, "must be True or False", value)
    return bool(value)


def check_epsilon(epsilon, name="epsilon"):
    """A finite, non-negative perturbation budget, returned as a float."""
    if not is_number(epsilon):
        _fail(name, "must be a finite number >= 0", epsilon)
    if not math.isfinite(epsilon) or epsilon < 0:
        _fail(name, "must be a finite number >= 0", epsilon)
    return float(epsilon)


def check_positive(value, name, integer=False, allow_none=False):
    """A finite number > 0 (an int >= 1 when `integer`), or `None` if allowed."""
    if value is None and allow_none:
        return None
    if integer:
        if not is_number(value) or not isinstance(value, numbers.Integral):
            _fail(name, "must be an integer >= 1", value)
        if value < 1:
            _fail(name, "must be an integer >= 1", value)
        return int(value)
    if not is_number(value):
        _fail(name, "must be a finite number > 0", value)
    if not math.isfinite(value) or value <= 0:
        _fail(name, "must be a finite number > 0", value)
    return float(value)


def check_clip(clip):
    """`None` (unbounded inputs) or a finite pair `(low, high)` with low < high."""
    if clip is None:
        return None
    try:
        if isinstance(clip, (str, bytes)) or not all(map(is_number, clip)):
            raise TypeError
        low, high = (float(v) for v in clip)
    except (TypeError, ValueError):
        _fail("clip", "must be None or a pair (low, high) such as (0.0, 1.0)", clip)
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        _fail("clip", "must be a pair of finite numbers with low < high", clip)
    return (low, high)


def is_float(x):
    """Whether `x` (a tensor or array) has a floating-point dtype."""
    return "float" in keras.backend.standardize_dtype(x.dtype)


def check_static_inputs(x, y):
    """Checks what is known while tracing: dtype of `x` and batch sizes."""
    if not is_float(x):
        _fail(
            "x",
            "must be a floating-point tensor (attacks differentiate with respect "
            "to it); cast it, e.g. x.astype('float32') / 255.0",
            f"<tensor of dtype {keras.backend.standardize_dtype(x.dtype)}>",
        )
    x_batch, y_batch = x.shape[0], y.shape[0]
    if x_batch is not None and y_batch is not None and x_batch != y_batch:
        raise ValueError(
            "Arguments `x` and `y` must hold the same number of examples. "
            f"Received: x.shape={tuple(x.shape)}, y.shape={tuple(y.shape)}"
        )


def check_concrete_inputs(x, y, num_classes, clip):
    """Checks values: finite `x` inside `clip`, labels inside the class range.

    Skipped for symbolic tensors (inside a compiled training step), where the
    values are not known.
    """
    if not (backend.is_concrete(x) and backend.is_concrete(y)):
        return
    check_value_range(x, clip)
    check_labels(ops.convert_to_numpy(y), num_classes)


def check_value_range(x, clip, name="x"):
    """Checks that the array `x` is finite and, unless `clip` is None, inside it.

    The check that keeps an attack honest: an input outside `clip` is moved
    into it by the attack's projection, so its "perturbation" would be the
    rescaling, not the attack. Runs once per dataset, not per step.
    """
    x = np.asarray(x)
    if not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        _fail(
            name,
            "must hold finite values only; remove or impute NaN/Inf",
            f"<{bad} NaN or Inf values>",
        )
    if clip is not None and x.size:
        low, high = float(x.min()), float(x.max())
        if low < clip[0] - 1e-5 or high > clip[1] + 1e-5:
            raise ValueError(
                f"Argument `{name}` has values in [{low:g}, {high:g}], outside the "
                f"valid input range clip={clip}. Scale the inputs to that range "
                "(e.g. divide pixels by 255) or pass the attack the `clip` that "
                "matches them (`clip=None` for unbounded inputs)."
            )


def check_labels(y, num_classes, name="y"):
    """Class ids in `[0, num_classes)`, or one-hot / soft rows of that width."""
    if num_classes is None:
        return
    y = np.asarray(y)
    if y.ndim >= 2 and y.shape[-1] == num_classes and num_classes > 1:
        return  # one-hot or soft targets
    if y.ndim >= 2 and y.shape[-1] != 1:
        raise ValueError(
            f"Argument `{name}` must hold class ids, or one-hot rows as wide as the "
            f"model's {num_classes} outputs. Received: {name}.shape={y.shape}"
        )
    labels = y.reshape(-1)
    if labels.size and (not np.all(labels == np.round(labels))):
        _fail(
            name,
            "must hold integer class labels or one-hot rows",
            "<non-integer labels>",
        )
    high = max(num_classes, 2) - 1
    if labels.size and (labels.min() < 0 or labels.max() > high):
        raise ValueError(
            f"Argument `{name}` must hold class labels in [0, {high}] for a model with "
            f"{num_classes} output(s). Received: labels in "
            f"[{labels.min():g}, {labels.max():g}]"
        )
