"""The functional graph under an `AdversarialModel`: wrapping, configs, budget."""

import keras


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


def functional_from_config(config, custom_objects):
    """`(inputs, outputs)` of a functional model's config, via Keras itself."""
    functional = keras.Model.from_config(config, custom_objects=custom_objects)
    return functional.input, functional.output
