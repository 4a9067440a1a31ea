"""`Attack.generate`: run an attack over a whole dataset, compiled once per model."""

import weakref

import keras
import numpy as np
from keras import ops

from keras_adv import argument_validation as validation
from keras_adv import backend

# attack -> {model -> compiled function}; entries vanish with either object.
_COMPILED = weakref.WeakKeyDictionary()


def _compiled(attack, model):
    per_model = _COMPILED.setdefault(attack, weakref.WeakKeyDictionary())
    if model not in per_model:
        model_ref = weakref.ref(model)  # the cached function must not keep it alive

        def forward(x):
            return model_ref()(x, training=False)

        def run(x, y, epsilon):
            x, y = ops.convert_to_tensor(x), ops.convert_to_tensor(y)
            epsilon = ops.convert_to_tensor(epsilon)
            return attack.perturb(forward, x, y, epsilon)

        state = list(model.variables) + [attack.seed_generator.state]
        per_model[model] = backend.compile_fn(run, state)
    return per_model[model]


def _standard(x, y):
    """`(x, y)` as the compiled attack takes them, whatever the caller's dtypes.

    Float inputs of any precision (NumPy's default float64, float16) are
    attacked in Keras's float type, and a column of class ids `(n, 1)` is
    flattened, so that one compiled attack serves every call.
    """
    x, y = ops.convert_to_numpy(x), ops.convert_to_numpy(y)
    if validation.is_float(x):
        x = x.astype(keras.backend.floatx(), copy=False)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    return x, y


def _batches(x, y, batch_size):
    """Yields `(x, y)` NumPy batches from arrays or an iterable of batches."""
    if hasattr(x, "shape"):
        if y is None:
            raise ValueError(
                "Argument `y` is required when `x` is an array (labels, or "
                "targets for a targeted attack). Received: y=None"
            )
        x, y = _standard(x, y)
        if len(x) != len(y):
            raise ValueError(
                "Arguments `x` and `y` must hold the same number of examples. "
                f"Received: x.shape={x.shape}, y.shape={y.shape}"
            )
        for start in range(0, len(x), batch_size):
            yield x[start : start + batch_size], y[start : start + batch_size]
        return
    if y is not None:
        raise ValueError(
            "Argument `y` must be None when `x` is a dataset of (x, y) batches. "
            f"Received: y of type {type(y).__name__}"
        )
    for batch in x:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError(
                "Argument `x` must yield (x, y) batches when it is a dataset. "
                f"Received a batch of type {type(batch).__name__}"
            )
        yield _standard(batch[0], batch[1])


def _pad(array, size):
    """Repeats the last example so that every batch has the same shape."""
    missing = size - len(array)
    if missing <= 0:
        return array
    return np.concatenate([array, np.repeat(array[-1:], missing, axis=0)])


def generate(attack, model, x, y=None, batch_size=128, epsilon=None):
    """See `Attack.generate`."""
    if not isinstance(model, keras.Model):
        raise ValueError(
            "Argument `model` must be a keras.Model. "
            f"Received: model of type {type(model).__name__}"
        )
    batch_size = validation.check_positive(batch_size, "batch_size", integer=True)
    epsilon = attack.epsilon if epsilon is None else validation.check_epsilon(epsilon)
    budget = np.asarray(epsilon, "float32")  # a tensor: no recompile per value
    run = num_classes = None
    results = []
    # The result has the caller's NumPy float dtype.
    dtype = keras.backend.standardize_dtype(x.dtype) if hasattr(x, "dtype") else None
    for x_batch, y_batch in _batches(x, y, batch_size):
        validation.check_static_inputs(x_batch, y_batch)
        if run is None:  # first batch: builds the model, fixes the batch shape
            outputs = model(x_batch[:1], training=False)
            if not hasattr(outputs, "shape"):
                raise ValueError(
                    "Argument `model` must have a single output tensor "
                    f"(logits or probabilities). Received outputs: {type(outputs)}"
                )
            num_classes = outputs.shape[-1]
            padded_size = len(x_batch)
            run = _compiled(attack, model)
        validation.check_concrete_inputs(x_batch, y_batch, num_classes, attack.clip)
        n = len(x_batch)
        x_adv = run(_pad(x_batch, padded_size), _pad(y_batch, padded_size), budget)
        results.append(ops.convert_to_numpy(x_adv)[:n])
    if not results:
        raise ValueError("Argument `x` must hold at least one example. Received none.")
    x_adv = np.concatenate(results)
    if dtype in ("float16", "float32", "float64"):
        x_adv = x_adv.astype(dtype, copy=False)
    return x_adv
