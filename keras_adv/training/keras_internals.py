"""The Keras internals keras-adv relies on, each with why no public API does it.

Every access to a private Keras attribute in keras-adv lives in this module
(`tests/test_layout.py` pins the list): a Keras release that moves one breaks
one function here, and the suite, not a user.
"""

import keras


def _metric_named(model, name):
    # `keras.Model.metrics` (public) lists the trackers `compile` made; the
    # class's own property, since `AdversarialModel.metrics` reorders them.
    return next((m for m in keras.Model.metrics.fget(model) if m.name == name), None)


def loss_tracker(model):
    """The `keras.metrics.Mean` behind the `loss` log of a compiled model.

    Public route: Keras's `metrics` list, where `compile` puts it as `"loss"`.
    Needed where keras-adv's own step (the two-pass step, or a step without
    a clean pass) reports `loss` instead of Keras's `train_step`.
    """
    return _metric_named(model, "loss")


def compiled_metrics(model):
    """The container of the metrics given to `compile` (`None` before it).

    Public route: Keras's `metrics` list, where it is named `"compile_metrics"`.
    Its class is Keras's own `CompileMetrics`, which resolves `"accuracy"`
    to the accuracy that fits the loss and outputs; no public class does.
    """
    return _metric_named(model, "compile_metrics")


def sole_call(model):
    """`(layer, input_tensors)` of the last call in a functional graph.

    Returns the layer that produced `model.output` and the symbolic tensors
    it was called on. Private: Keras exposes a graph's nodes only through a
    tensor's `_keras_history` and a layer's `_inbound_nodes` (the functional
    API itself reads them; `get_config` would serialise every inner layer to
    tell the same).
    """
    history = model.output._keras_history
    node = history.operation._inbound_nodes[history.node_index]
    return history.operation, node.input_tensors
