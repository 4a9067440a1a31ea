"""Where the job's model comes from: a zoo name, a `.keras` file, or a builder function.

`--model` (config `model`) takes one of:

- a name in `zoo.MODELS` (`small_cnn`, the default reference CNN);
- `path/to/model.keras`: the file's architecture. With `init="fresh"` (the
  default) every training budget starts from the same freshly initialised
  weights (`keras.models.clone_model` after `keras.utils.set_random_seed`);
  with `init="weights"` from the file's own weights (adversarial fine-tuning);
- `package.module:function` or `path/to/file.py:function`: a function called
  as `function(input_shape, num_classes)` that returns a `keras.Model`.

The model must take one input of the data's shape and give one output of
one score per class (logits or probabilities: `build` says which); anything
else is refused before training, in one line saying what to change.

Under a mixed-precision global dtype policy (the recipe's `precision`), a
zoo or function model is built in it, a `.keras` file's layers are rebuilt
in it (their saved policy would otherwise win), and an output that is not
float32 gets a float32 linear activation, as Keras's mixed-precision guide
asks, so scores and losses are computed in float32.
"""

import hashlib
import importlib
import importlib.util
import os

import keras
import numpy as np

from keras_adv import losses
from keras_adv.experiments import zoo

INITS = ("fresh", "weights")


class ModelSourceError(ValueError):
    """A `--model` that cannot give a model fitting the data: exit status 2."""


def kind(source):
    """`"zoo"`, `"keras_file"` or `"function"`; `ModelSourceError` otherwise."""
    if not isinstance(source, str) or not source:
        raise ModelSourceError(
            f"--model must be a zoo name ({', '.join(zoo.MODELS)}), a .keras file "
            f"or module:function. Received: {source!r}"
        )
    if source in zoo.MODELS:
        return "zoo"
    if source.endswith(".keras"):
        return "keras_file"
    if ":" in source.replace("\\", "/").split("/")[-1]:
        return "function"
    raise ModelSourceError(
        f"--model {source} is neither a zoo name ({', '.join(zoo.MODELS)}), nor a "
        ".keras file, nor module:function (e.g. my_models:build or "
        "models.py:build)."
    )


def describe(source):
    """What identifies the model source in `results.json`: kind and content hash.

    A file's content (the `.keras` file, or the `.py` file of a builder) is
    hashed, so a resumed sweep refuses a file that changed under its name.
    """
    found = kind(source)
    record = {"source": source, "kind": found}
    path = None
    if found == "keras_file":
        path = source
    elif found == "function":
        path = _function_file(source)
    if path is not None:
        if not os.path.isfile(path):
            raise ModelSourceError(f"--model {source}: no file {path}")
        with open(path, "rb") as handle:
            record["sha256"] = hashlib.sha256(handle.read()).hexdigest()
    return record


def build(source, input_shape, num_classes, seed, init="fresh"):
    """The model `source` names, checked against the data; new weights per call.

    Args:
        source: a zoo name, a `.keras` path, or `module:function`.
        input_shape: the shape of one example, e.g. `(8, 8, 1)`.
        num_classes: the number of classes of the data.
        seed: seed of the initial weights (the same seed, the same weights).
        init: `"fresh"` (new initial weights) or `"weights"` (a `.keras`
            file's own weights). Defaults to `"fresh"`.

    Returns:
        `(model, from_logits)`: whether the outputs are logits, found by
        running the model on zeros (rows of probabilities sum to 1).
    """
    found = kind(source)
    if init not in INITS:
        raise ModelSourceError(
            f"--init must be one of {', '.join(INITS)}. Received: {init!r}"
        )
    if init == "weights" and found != "keras_file":
        raise ModelSourceError(
            f"--init weights keeps a .keras file's weights; --model {source} is a "
            f"{found.replace('_', ' ')}: drop --init or pass a .keras file."
        )
    keras.utils.set_random_seed(seed)
    if found == "zoo":
        model = zoo.MODELS[source](tuple(input_shape), num_classes, seed)
    elif found == "keras_file":
        model = _from_file(source, init)
    else:
        model = _from_function(source, tuple(input_shape), num_classes)
    check_fits(model, source, input_shape, num_classes)
    model = _float32_output(model)
    outputs = model(np.zeros((2, *input_shape), keras.backend.floatx()))
    from_logits = not bool(keras.ops.convert_to_numpy(losses.is_probability(outputs)))
    return model, from_logits


def check_fits(model, source, input_shape, num_classes):
    """Refuses a model with several inputs or outputs, or that misfits the data."""
    if not isinstance(model, keras.Model):
        raise ModelSourceError(
            f"--model {source} must give a keras.Model. "
            f"Received: {type(model).__name__}"
        )
    inputs, outputs = model.inputs or [], model.outputs or []
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelSourceError(
            f"--model {source} has {len(inputs)} inputs and {len(outputs)} outputs; "
            "the job needs one of each (one image in, one score per class out)."
        )
    shape = tuple(inputs[0].shape[1:])
    fits = len(shape) == len(input_shape) and all(
        s is None or s == d for s, d in zip(shape, input_shape, strict=True)
    )
    if not fits:
        raise ModelSourceError(
            f"--model {source} takes inputs of shape {shape}, but the data's "
            f"examples have shape {tuple(input_shape)}: build it with "
            f"keras.Input({tuple(input_shape)})."
        )
    width = outputs[0].shape[-1]
    if len(outputs[0].shape) != 2 or width != num_classes:
        raise ModelSourceError(
            f"--model {source} outputs shape {tuple(outputs[0].shape[1:])}, but the "
            f"data have {num_classes} classes: end it with "
            f"keras.layers.Dense({num_classes}) (logits) or a {num_classes}-way "
            "softmax."
        )


def _from_file(path, init):
    if not os.path.isfile(path):
        raise ModelSourceError(f"--model {path}: no such .keras file")
    try:
        loaded = keras.saving.load_model(path, compile=False)
    except Exception as error:  # a damaged or foreign archive, missing objects
        first = (str(error).strip().splitlines() or [""])[0]
        raise ModelSourceError(
            f"cannot load --model {path}: {type(error).__name__}: {first}"
        ) from None
    policy = keras.mixed_precision.global_policy().name
    if policy == "float32":
        if init == "weights":
            return loaded
        try:
            return keras.models.clone_model(loaded)  # same layers, fresh weights
        except ValueError as error:
            raise ModelSourceError(
                f"--model {path} cannot be re-initialised ({error}); pass --init "
                "weights to train from its weights."
            ) from None
    try:  # each layer rebuilt in the policy; variables stay float32
        model = keras.models.clone_model(
            loaded,
            clone_function=lambda layer: layer.__class__.from_config(
                {**layer.get_config(), "dtype": policy}
            ),
        )
    except (ValueError, TypeError) as error:
        first = (str(error).strip().splitlines() or [""])[0]
        raise ModelSourceError(
            f"--model {path} cannot be rebuilt in precision {policy} ({first}); "
            "save it built under that policy, or train in float32."
        ) from None
    if init == "weights":
        model.set_weights(loaded.get_weights())
    return model


def _float32_output(model):
    """`model`, ending in float32 (a float32 linear activation added when the
    output is float16 or bfloat16: softmax and losses then run in float32)."""
    if keras.backend.standardize_dtype(model.outputs[0].dtype) == "float32":
        return model
    output = keras.layers.Activation("linear", dtype="float32", name="float32_output")
    return keras.Model(model.inputs[0], output(model.outputs[0]), name=model.name)


def _split(source):
    module, _, function = source.rpartition(":")
    if not module or not function.isidentifier():
        raise ModelSourceError(
            f"--model {source}: expected module:function or file.py:function"
        )
    return module, function


def _function_file(source):
    """The `.py` file behind `module:function` (or None for an installed module)."""
    module, _ = _split(source)
    if module.endswith(".py"):
        return module
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a parent package that does not import
        return None
    return getattr(spec, "origin", None)


def _from_function(source, input_shape, num_classes):
    module_name, function_name = _split(source)
    if module_name.endswith(".py"):
        if not os.path.isfile(module_name):
            raise ModelSourceError(f"--model {source}: no file {module_name}")
        spec = importlib.util.spec_from_file_location(
            "keras_adv_user_model", module_name
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise ModelSourceError(
                f"--model {source}: cannot import {module_name} ({error}); put it "
                "on PYTHONPATH or pass path/to/file.py:function."
            ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ModelSourceError(
            f"--model {source}: {module_name} has no function {function_name}"
        )
    return function(input_shape, num_classes)
