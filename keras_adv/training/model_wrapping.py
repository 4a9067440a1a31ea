"""The functional graph under an `AdversarialModel`: wrapping, configs, budget."""

import keras

from keras_adv.training import keras_internals


def check_budget(attack):
    if attack.clip is not None and attack.norm == "linf":
        span = attack.clip[1] - attack.clip[0]
        if attack.epsilon >= span:
            raise ValueError(
                "Argument `attack` has an L-inf budget that covers the whole valid "
                f"input range clip={attack.clip}: every input could become any "
                "other. Inputs are expected on the scale of `clip` (e.g. [0, 1] "
                f"with epsilon around 0.03-0.3). Received: epsilon={attack.epsilon}"
            )


def wrap(model):
    """`(inputs, outputs)` of a functional graph with `model` as its one layer."""
    if not isinstance(model, keras.Model):
        raise ValueError(
            "Argument `model` must be a keras.Model. Received: model of type "
            f"{type(model).__name__}"
        )
    structure = None
    for attribute in ("input", "inputs"):  # Sequential only has `inputs`
        try:
            structure = getattr(model, attribute)
            break
        except (AttributeError, ValueError):
            continue
    if isinstance(structure, list) and len(structure) == 1:
        structure = structure[0]
    if structure is None:
        raise ValueError(
            "Argument `model` must have defined inputs (a functional or "
            "Sequential model starting with keras.Input). For a subclassed "
            "model, build the graph yourself: inputs = keras.Input(shape); "
            "AdversarialModel(inputs, model(inputs), attack=...). "
            f"Received: model={model.name!r} without inputs"
        )
    inputs = keras.tree.map_structure(
        lambda t: keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name),
        structure,
    )
    return inputs, model(inputs)


def direct_layer(model):
    """The model inside `model` when its graph is just `input -> model -> output`.

    An `AdversarialModel` wrapping a model (`model=`, or loaded from such a
    `.keras` file) has this graph. Calling the inner model directly gives the
    same outputs (it converts and checks its inputs itself) without the outer
    model's `__call__`, whose overhead counts in eager PyTorch, where attacks
    make several calls per training step. `None` for any other
    graph (several inputs or outputs, or layers besides the one model).
    """
    layers = [
        layer
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    if len(layers) != 1 or not isinstance(layers[0], keras.Model):
        return None
    if keras.tree.is_nested(model.output) or len(model.inputs) != 1:
        return None
    layer, input_tensors = keras_internals.sole_call(model)
    if layer is not layers[0] or len(input_tensors) != 1:
        return None
    if input_tensors[0] is not model.inputs[0]:
        return None
    return layers[0]


def functional_from_config(config, custom_objects):
    """`(inputs, outputs)` of a functional model's config, via Keras itself."""
    functional = keras.Model.from_config(config, custom_objects=custom_objects)
    return functional.input, functional.output
