"""`AdversarialRegularization`: NSL's Keras wrapper, trained by keras-adv.

Named `keras` after NSL's `nsl.keras` namespace, so that
`nsl.keras.AdversarialRegularization(...)` reads the same after the import
changes.
"""

import inspect

import keras

from keras_adv.compat.nsl import configs
from keras_adv.training import objectives
from keras_adv.training.adversarial_model import AdversarialModel


class AdversarialRegularization(AdversarialModel):
    """NSL's `AdversarialRegularization`, on keras-adv (any Keras 3 backend).

    Wraps `base_model` (its layers and weights are shared) and trains it on
    `L(x) + multiplier * L(x_adv)`, with `x_adv` NSL's adversarial neighbour
    (`configs.attack_of`). As in NSL, `fit` and `evaluate` take dicts (or
    datasets of dicts) that hold the features and the label under
    `label_keys`, and `y` is not passed. It is an `AdversarialModel`: logs
    carry `loss`, `clean_loss`, `adv_loss` (NSL's `adversarial_loss`, before
    the multiplier) and each compiled metric with its `adv_` counterpart.

    Args:
        base_model: a functional or Sequential `keras.Model`; its inputs are
            found in the dict by their names (`keras.Input(name=...)`), or a
            single input takes the dict's one feature whatever its key.
        label_keys: the dict key of the label, as a one-element sequence.
            Defaults to `("label",)`.
        sample_weight_key: the dict key of per-example weights, or `None`.
        adv_config: an `AdvRegConfig` (`make_adv_reg_config`). Defaults to
            NSL's defaults (multiplier 0.2, L2 step 0.001).
        base_with_labels_in_features: must be `False` (subclassed base
            models that read the labels are not supported).
    """

    def __init__(
        self,
        base_model: keras.Model,
        label_keys: "tuple[str, ...] | list[str]" = ("label",),
        sample_weight_key: str | None = None,
        adv_config: "configs.AdvRegConfig | None" = None,
        base_with_labels_in_features: bool = False,
    ):
        adv_config = configs.AdvRegConfig() if adv_config is None else adv_config
        if not isinstance(adv_config, configs.AdvRegConfig):
            raise ValueError(
                "Argument `adv_config` must come from "
                "keras_adv.compat.nsl.make_adv_reg_config(...). "
                f"Received: adv_config={adv_config!r}"
            )
        if isinstance(label_keys, str):
            label_keys = (label_keys,)
        label_keys = tuple(label_keys)
        if len(label_keys) != 1 or not all(isinstance(k, str) for k in label_keys):
            raise ValueError(
                "Argument `label_keys` must name one label (models with several "
                "outputs are not supported), e.g. label_keys=['label']. "
                f"Received: label_keys={label_keys!r}"
            )
        if base_with_labels_in_features:
            raise ValueError(
                "Argument `base_with_labels_in_features=True` is not supported: "
                "the base model gets the features without the labels. "
                "Received: base_with_labels_in_features=True"
            )
        super().__init__(
            model=base_model,
            attack=configs.attack_of(adv_config.adv_neighbor_config),
            objective=objectives.Regularized(adv_config.multiplier),
            name="AdversarialRegularization",
        )
        self.base_model = base_model
        self.label_keys = label_keys
        self.sample_weight_key = sample_weight_key
        self.adv_config = adv_config

    def compile(self, optimizer="rmsprop", loss=None, **kwargs):
        super().compile(optimizer, loss, **kwargs)
        # NSL's neighbours ascend the compiled loss; the attack's own loss is
        # crossentropy, the same direction for a crossentropy loss only.
        name = loss if isinstance(loss, str) else getattr(loss, "name", "")
        name = name or getattr(loss, "__name__", "")
        if "crossentropy" not in name:
            attack = self.attack.clone(
                loss=keras.losses.get(loss) if isinstance(loss, str) else loss
            )
            attack.seed_generator = self.attack.seed_generator
            self.attack = attack
            self._cached_attack = None

    def fit(self, x=None, y=None, *args, **kwargs):
        validation = kwargs.get("validation_data")
        if validation is not None:
            kwargs["validation_data"] = self._keras_data(validation)
        x, y = self._with_labels(x, y, kwargs)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        x, y = self._with_labels(x, y, kwargs)
        return super().evaluate(x, y, *args, **kwargs)

    def _with_labels(self, x, y, kwargs):
        """`(x, y)` for Keras's `fit` and `evaluate`; a sample weight from
        the dict goes into `kwargs`."""
        if y is not None or not isinstance(x, dict):
            return self._keras_data(x, y), y
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(self._split(x))
        if sample_weight is not None:
            kwargs["sample_weight"] = sample_weight
        return x, y

    def predict(self, x, *args, **kwargs):
        if isinstance(x, dict):
            x = self._model_inputs(self._features(x))
        return super().predict(x, *args, **kwargs)

    def _keras_data(self, x, y=None):
        """NSL's dicts (arrays, a `tf.data.Dataset` or a generator of them)
        as Keras takes data: `(features, label[, sample_weight])`."""
        if y is not None or x is None:
            return x
        if isinstance(x, dict):
            return self._split(x)
        if isinstance(getattr(x, "element_spec", None), dict):  # tf.data
            return x.map(self._split)
        if inspect.isgenerator(x):
            return (self._split(batch) for batch in x)
        return x

    def _split(self, data):
        """`(features, label[, sample_weight])` from NSL's dict (or as given)."""
        if not isinstance(data, dict):
            return data  # already (x, y): nothing to take apart
        x, y, sample_weight = data, None, None
        missing = [key for key in self.label_keys if key not in x]
        if missing:
            raise ValueError(
                f"The input dict has no label under {missing[0]!r} (label_keys): "
                f"its keys are {sorted(x)}. Put the label in the dict, or pass "
                "label_keys=[<its key>]."
            )
        y = x[self.label_keys[0]]
        if self.sample_weight_key is not None:
            if self.sample_weight_key not in x:
                raise ValueError(
                    f"The input dict has no {self.sample_weight_key!r} "
                    f"(sample_weight_key): its keys are {sorted(x)}."
                )
            sample_weight = x[self.sample_weight_key]
        features = self._model_inputs(self._features(x))
        return keras.utils.pack_x_y_sample_weight(features, y, sample_weight)

    def _features(self, x):
        dropped = set(self.label_keys) | {self.sample_weight_key}
        return {key: value for key, value in x.items() if key not in dropped}

    def _model_inputs(self, features):
        """The features in the structure the base model takes: a dict by
        its keys, a list by its inputs' names, a single input by its name
        (or the one feature there is, as NSL feeds a Sequential model)."""
        structure = self.input

        def find(name):
            if name not in features:
                raise ValueError(
                    f"The base model's input {name!r} is not among the features "
                    f"{sorted(features)}: name each keras.Input after its key "
                    "in the input dict."
                )
            return features[name]

        if isinstance(structure, dict):
            return {key: find(key) for key in structure}
        if isinstance(structure, (list, tuple)):
            return [find(tensor.name) for tensor in structure]
        if len(features) == 1:
            return next(iter(features.values()))
        return find(structure.name)

    def get_config(self):
        raise NotImplementedError(
            "AdversarialRegularization is not saved whole (as in NSL): save "
            "adv_model.base_model, or train a keras_adv.AdversarialModel, whose "
            ".keras files keep the attack and objective."
        )
