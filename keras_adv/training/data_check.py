"""The data of `AdversarialModel.fit` and `evaluate`, checked once per call.

A training attack projects every perturbed input into `clip`, so inputs on
the wrong scale (pixels in [0, 255] with `clip=(0, 1)`) would train on the
rescaling instead of the attack, and `evaluate` would report adversarial
accuracy above clean accuracy. The steps themselves are traced and never see
values, so the values are checked here, before the first step: arrays whole,
a dataset or generator by its first batch (a `torch` `DataLoader` by its
first example), which costs one pass over arrays, not one per step.
"""

import inspect

import keras
from keras import ops

from keras_adv import argument_validation as validation


def peek(x, y=None):
    """`(sample, x)`: the `(x, y)` to check, and `x` to use from now on.

    Arrays (or dicts and lists of them) are their own sample. A dataset is
    sampled by its first batch; a generator is read one batch ahead and
    handed back as an equal generator. `sample` is `None` when nothing can
    be looked at without consuming the data.
    """
    if x is None:
        return None, x
    if hasattr(x, "shape") or isinstance(x, (dict, list, tuple)):
        return (x, y), x
    if inspect.isgenerator(x):
        first = next(x, None)
        if first is None:
            return None, x
        return _unpack(first), _chain(first, x)
    if isinstance(x, keras.utils.PyDataset):
        return (_unpack(x[0]) if len(x) else None), x
    if hasattr(x, "element_spec") and hasattr(x, "take"):  # tf.data
        return _unpack(next(iter(x.take(1)), None)), x
    if hasattr(x, "dataset") and hasattr(x, "batch_size"):  # torch DataLoader
        first = x.dataset[0] if len(x.dataset) else None
        return _unpack(first, add_batch_axis=True), x
    return None, x


def check(model, x, y, inputs_to_perturb):
    """Refuses inputs outside the attack's `clip` and labels the model cannot output.

    Args:
        model: the `AdversarialModel` (its attack's `clip`, its outputs).
        x: the inputs: an array, a dict or list of arrays.
        y: the labels, or `None`.
        inputs_to_perturb: the model's `AdversarialInputs`; only the inputs
            it perturbs are range-checked.
    """
    for leaf in inputs_to_perturb.select(x):
        validation.check_value_range(ops.convert_to_numpy(leaf), model.attack.clip)
    outputs = getattr(model, "outputs", None) or []
    if y is not None and len(outputs) == 1 and hasattr(y, "shape"):
        validation.check_labels(ops.convert_to_numpy(y), outputs[0].shape[-1])


def _unpack(batch, add_batch_axis=False):
    if batch is None:
        return None
    if not isinstance(batch, (tuple, list)):
        batch = (batch,)
    x, y, _ = keras.utils.unpack_x_y_sample_weight(tuple(batch))
    if add_batch_axis:
        x = keras.tree.map_structure(lambda leaf: ops.expand_dims(leaf, 0), x)
        y = None if y is None else ops.expand_dims(ops.convert_to_tensor(y), 0)
    return x, y


def _chain(first, rest):
    yield first
    yield from rest
