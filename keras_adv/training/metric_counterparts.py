"""The `adv_` counterparts of a model's compiled metrics."""

import keras

from keras_adv.training import keras_internals

_PREFIXED_CLASSES = {}


def _prefixed_class(base):
    """A subclass of Keras's compiled-metrics container that prefixes `adv_`."""
    if base not in _PREFIXED_CLASSES:

        class AdversarialCompileMetrics(base):
            def result(self):
                return {f"adv_{name}": v for name, v in super().result().items()}

        _PREFIXED_CLASSES[base] = AdversarialCompileMetrics
    return _PREFIXED_CLASSES[base]


def _fresh(spec):
    """A new metric for each `keras.metrics.Metric` in `spec`; names kept."""
    if spec is None:
        return None

    def clone(item):
        if isinstance(item, keras.metrics.Metric):
            return type(item).from_config(item.get_config())
        return item

    return keras.tree.map_structure(clone, spec)


def adversarial_counterparts(model, metrics, weighted_metrics):
    """A metrics container like the one `compile` built, for perturbed inputs.

    It resolves the same specs the same way (`"accuracy"` becomes the
    accuracy that fits the loss and outputs), with its own state: metric
    objects given to `compile` are cloned, not shared. Its results are named
    `adv_<name>`. `None` when nothing but the loss was compiled.
    """
    if not metrics and not weighted_metrics:
        return None
    compiled = keras_internals.compiled_metrics(model)
    container = _prefixed_class(type(compiled))(
        _fresh(metrics),
        _fresh(weighted_metrics),
        output_names=getattr(model, "output_names", None),
    )
    container.name = "adv_compile_metrics"
    return container
