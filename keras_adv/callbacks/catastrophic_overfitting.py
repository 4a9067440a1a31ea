"""`CatastrophicOverfittingGuard`: catch FGSM training collapsing against PGD."""

import warnings

import keras

from keras_adv import argument_validation as validation
from keras_adv import metrics as adv_metrics
from keras_adv.attacks.fgsm import FGSM
from keras_adv.attacks.pgd import PGD
from keras_adv.evaluation.probe import ProbeSet
from keras_adv.evaluation.probe import check_single_output


class CatastrophicOverfittingGuard(keras.callbacks.Callback):
    """Warns (and optionally stops) when PGD accuracy collapses during training.

    Fast FGSM training can suddenly stop being robust to PGD while staying
    robust to FGSM ("catastrophic overfitting", Wong et al. 2020, "Fast is
    better than free", arXiv:2001.03994). Each epoch this callback measures
    FGSM and PGD robust accuracy on a probe set, logs `adv_fgsm_accuracy`,
    `adv_pgd_accuracy` and `adv_catastrophic_overfitting` (1.0 on the epoch
    it fires), and fires when PGD accuracy falls more than `threshold` below
    its best so far.

    Args:
        data: the probe set, as for `AdversarialMonitor`.
        epsilon: the budget of both attacks (L-inf).
        threshold: the drop in PGD accuracy that counts as a collapse, in
            [0, 1]. Defaults to 0.2 (20 points).
        pgd_steps: steps of the PGD attack. Defaults to 10.
        stop_training: stop `fit` when it fires. Defaults to `False`.
        restore_best_weights: when stopping, restore the weights of the
            epoch with the best PGD accuracy. Defaults to `True`.
        max_examples: size cap of the probe set. Defaults to 512.
        seed: seed of the PGD random start. Defaults to `None`.
    """

    def __init__(
        self,
        data,
        epsilon: float,
        threshold: float = 0.2,
        pgd_steps: int = 10,
        stop_training: bool = False,
        restore_best_weights: bool = True,
        max_examples: int = 512,
        seed: int | None = None,
    ):
        super().__init__()
        self.probe = ProbeSet(data, max_examples)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(
                "Argument `threshold` must be in [0, 1]. "
                f"Received: threshold={threshold}"
            )
        self.threshold = float(threshold)
        self.fgsm = FGSM(validation.check_epsilon(epsilon))
        self.pgd = PGD(epsilon, steps=pgd_steps, seed=seed)
        self.stop = validation.check_bool(stop_training, "stop_training")
        self.restore_best_weights = validation.check_bool(
            restore_best_weights, "restore_best_weights"
        )
        self.fgsm_metric = adv_metrics.RobustAccuracy(name="fgsm_accuracy")
        self.pgd_metric = adv_metrics.RobustAccuracy(name="pgd_accuracy")
        self.fired_epochs = []

    def on_train_begin(self, logs=None):
        check_single_output(self.model, "CatastrophicOverfittingGuard")
        self.best, self.best_epoch, self.best_weights = -1.0, None, None
        self.fired_epochs = []

    def on_epoch_end(self, epoch, logs=None):
        fgsm = self.probe.evaluate(
            self.model, self.fgsm, [(self.fgsm_metric, ("y", "y_pred_adv"))]
        )["fgsm_accuracy"]
        pgd = self.probe.evaluate(
            self.model, self.pgd, [(self.pgd_metric, ("y", "y_pred_adv"))]
        )["pgd_accuracy"]
        fired = self.best >= 0 and pgd < self.best - self.threshold
        if logs is not None:
            logs.update(
                {
                    "adv_fgsm_accuracy": fgsm,
                    "adv_pgd_accuracy": pgd,
                    "adv_catastrophic_overfitting": float(fired),
                }
            )
        if pgd > self.best:
            self.best, self.best_epoch = pgd, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
        if fired:
            self._fire(epoch, fgsm, pgd)

    def _fire(self, epoch, fgsm, pgd):
        self.fired_epochs.append(epoch)
        warnings.warn(
            f"Catastrophic overfitting at epoch {epoch + 1}: PGD accuracy fell "
            f"from {self.best:.3f} (epoch {self.best_epoch + 1}) to {pgd:.3f} "
            f"while FGSM accuracy is {fgsm:.3f}. Use FGSM with a random start "
            "(FGSM(..., random_start=True)), a smaller step, or PGD training.",
            stacklevel=2,
        )
        if self.stop:
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                self.model.set_weights(self.best_weights)
