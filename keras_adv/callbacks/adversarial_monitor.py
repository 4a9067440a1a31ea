"""`AdversarialMonitor`: attack strength and defense effect in Keras `logs`."""

import keras

from keras_adv import argument_validation as validation
from keras_adv.attacks.attack import Attack
from keras_adv.attacks.fgsm import FGSM
from keras_adv.evaluation.probe import ProbeSet
from keras_adv.evaluation.probe import check_single_output
from keras_adv.evaluation.probe import own_attack
from keras_adv.evaluation.probe import standard_metrics


class AdversarialMonitor(keras.callbacks.Callback):
    """Logs how strong an attack is and what it does to the model, per epoch.

    After every `every` epochs (and after the first), it attacks a probe set
    fixed at construction and writes into `logs`:

    - `adv_perturbation_linf`, `adv_perturbation_l2` (and `..._max`): the
      mean (max) per-example norm of `x_adv - x`, the attack's strength;
    - `adv_prediction_drift` (L2), `adv_prediction_drift_l1`, `adv_kl`:
      distances between clean and perturbed probability vectors;
    - `adv_flip_rate`: share of predictions the attack changes;
    - `adv_robust_accuracy` and `adv_clean_accuracy` on the probe set.

    History, `CSVLogger`, `TensorBoard`, `EarlyStopping` and
    `ModelCheckpoint` then see them with no extra code, provided the monitor
    comes **before** them in the `callbacks` list: Keras calls callbacks in
    order, and one that runs earlier reads `logs` before the keys exist.
    The attack runs in a function compiled once per model and reused.

    Args:
        data: the probe set: an `(x, y)` pair, or a `tf.data.Dataset` of
            `(x, y)` batches; inputs inside the attack's `clip` (refused
            otherwise).
        attack: the attack to run. Defaults to `None`: the model's own attack
            if it is an `AdversarialModel`, else `FGSM(epsilon)`.
        epsilon: the FGSM budget when no attack is given. Defaults to 0.03.
        every: compute every this many epochs (always after the first).
            Defaults to 1.
        max_examples: size cap of the probe set. Defaults to 64, which keeps
            the monitor a small share of an epoch even on the tiny digits set
            (the README's Performance section has the measurement); its
            accuracies then have a standard error of up to 6 points (a trend,
            not a measurement), so on larger data, where epochs are longer,
            raise it to 1000 or more.
        batch_size: examples per compiled call. Defaults to 256.
        from_logits: whether the model outputs logits, for the drift
            metrics and the default attack; `None` takes it from the compiled
            loss, else detects it per batch. Defaults to `None`.
        perturb: attack a layer's output instead of the inputs (text
            models: `"embeddings"`, a layer name or a layer); the perturbation
            norms are then measured at that layer. Defaults to `None`: an
            `AdversarialModel`'s own `perturb` at a layer, else the inputs.
        relative_budget: with `perturb`, budgets are shares of each
            example's norm at the layer. Defaults to `None`: the
            `AdversarialModel`'s own setting, else `False` (absolute).
        per_token: with `perturb`, each token of the layer's output gets
            the budget (see `AdversarialModel`). Defaults to `None`: the
            `AdversarialModel`'s own setting, else `False`.

    Examples:

        >>> import keras, numpy as np
        >>> from keras_adv.callbacks import AdversarialMonitor
        >>> x = np.random.rand(64, 4).astype("float32"); y = np.arange(64) % 2
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(True))
        >>> history = model.fit(x, y, epochs=2, verbose=0,
        ...                     callbacks=[AdversarialMonitor((x, y), epsilon=0.1)])
        >>> round(history.history["adv_perturbation_linf"][-1], 4)
        0.1
    """

    def __init__(
        self,
        data,
        attack: Attack | None = None,
        epsilon: float = 0.03,
        every: int = 1,
        max_examples: int = 64,
        batch_size: int = 256,
        from_logits: bool | None = None,
        perturb: "str | keras.layers.Layer | None" = None,
        relative_budget: bool | None = None,
        per_token: bool | None = None,
    ):
        super().__init__()
        self.probe = ProbeSet(
            data,
            max_examples,
            batch_size,
            perturb=perturb,
            relative_budget=bool(relative_budget),
            per_token=bool(per_token),
        )
        self.relative_budget = relative_budget
        self.per_token = per_token
        self.attack = attack
        self.epsilon = validation.check_epsilon(epsilon)
        self.every = validation.check_positive(every, "every", integer=True)
        self.metrics = standard_metrics(from_logits)
        self.from_logits = from_logits
        self.history = {}
        self._attack_in_use = None

    def on_train_begin(self, logs=None):
        self.history = {}
        self._prepare(self.model)

    def on_epoch_end(self, epoch, logs=None):
        if epoch % self.every:
            return
        results = self.compute()
        for key, value in results.items():
            self.history.setdefault(key, []).append(value)
        if logs is not None:
            logs.update(results)

    def compute(self, model=None):
        """Attacks the probe set now; returns the `adv_` values as a dict."""
        model = model or self.model
        self._prepare(model)
        values = self.probe.evaluate(model, self._attack_in_use, self.metrics)
        return {f"adv_{name}": value for name, value in values.items()}

    def _prepare(self, model):
        """Checks the model; picks the attack and `from_logits` once."""
        check_single_output(model, "AdversarialMonitor")
        if self._attack_in_use is not None:
            return
        from_logits = self.from_logits
        if from_logits is None:  # what the compiled loss says, if anything
            from_logits = getattr(getattr(model, "loss", None), "from_logits", None)
        for metric, _ in self.metrics:
            if hasattr(metric, "from_logits") and metric.from_logits is None:
                metric.from_logits = from_logits
        own_layer = getattr(model, "layer_perturbation", None)
        if self.probe.perturb is None and own_layer is not None:
            self.probe.perturb = own_layer.layer  # where the model is attacked
        if self.relative_budget is None and own_layer is not None:
            self.probe.relative_budget = model.relative_budget
        if self.per_token is None and own_layer is not None:
            self.probe.per_token = model.per_token
        attack = self.attack or own_attack(model)
        attack = attack or FGSM(self.epsilon, from_logits=from_logits)
        self.probe.check_range(attack.clip)
        self._attack_in_use = attack
