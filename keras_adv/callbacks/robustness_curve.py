"""`RobustnessCurve`: robust accuracy over a grid of budgets, per epoch."""

from collections.abc import Mapping
from collections.abc import Sequence

import keras

from keras_adv import argument_validation as validation
from keras_adv import metrics as adv_metrics
from keras_adv.attacks.attack import Attack
from keras_adv.evaluation.probe import ProbeSet
from keras_adv.evaluation.probe import check_single_output


class RobustnessCurve(keras.callbacks.Callback):
    """Logs robust accuracy for each attack and budget as `adv_accuracy@<attack>_<eps>`.

    Each attack is compiled once per model; the budget is passed to it as a
    tensor, so a grid of epsilons costs no retracing. The values are also
    kept in `table` (one dict per epoch, attack and epsilon) for plotting.
    Place it before `CSVLogger` / `TensorBoard` in the callbacks list.

    Args:
        data: the probe set, as for `AdversarialMonitor`.
        attacks: a dict `{name: attack}` or a list of attacks (named after
            their class, lowercased).
        epsilons: the budgets, each >= 0.
        every: compute every this many epochs (always after the first).
            Defaults to 1.
        max_examples: size cap of the probe set. Defaults to 512.
        batch_size: examples per compiled call. Defaults to 256.
    """

    def __init__(
        self,
        data,
        attacks: "Sequence[Attack] | Mapping[str, Attack]",
        epsilons: Sequence[float],
        every: int = 1,
        max_examples: int = 512,
        batch_size: int = 256,
    ):
        super().__init__()
        self.probe = ProbeSet(data, max_examples, batch_size)
        if not isinstance(attacks, dict):
            attacks = {type(attack).__name__.lower(): attack for attack in attacks}
        if not attacks:
            raise ValueError("Argument `attacks` must name at least one attack.")
        self.attacks = dict(attacks)
        self.epsilons = [
            validation.check_epsilon(eps, "epsilons") for eps in list(epsilons)
        ]
        if not self.epsilons:
            raise ValueError("Argument `epsilons` must hold at least one budget.")
        self.every = validation.check_positive(every, "every", integer=True)
        self.metric = adv_metrics.RobustAccuracy(name="accuracy")
        self.table = []

    def on_train_begin(self, logs=None):
        check_single_output(self.model, "RobustnessCurve")
        self.table = []

    def on_epoch_end(self, epoch, logs=None):
        if epoch % self.every:
            return
        for name, attack in self.attacks.items():
            for eps in self.epsilons:
                accuracy = self.probe.evaluate(
                    self.model, attack, [(self.metric, ("y", "y_pred_adv"))], eps
                )["accuracy"]
                self.table.append(
                    {
                        "epoch": epoch,
                        "attack": name,
                        "epsilon": eps,
                        "accuracy": accuracy,
                    }
                )
                if logs is not None:
                    logs[f"adv_accuracy@{name}_{eps:g}"] = accuracy
