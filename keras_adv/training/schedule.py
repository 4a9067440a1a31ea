"""Adversarial warm-up and epsilon ramp: the budget as a function of the epoch."""

import keras

from keras_adv import argument_validation as validation


class EpsilonSchedule:
    """Share of the attack budget used in each epoch.

    `warmup` epochs of clean training (share 0), then a linear ramp over
    `ramp` epochs (`1/ramp, 2/ramp, ..., 1`), then the full budget.

    Args:
        warmup: epochs before the attack starts, >= 0.
        ramp: epochs to reach the full budget, >= 0.
        names: the arguments `warmup` and `ramp` came from, for errors.
            Defaults to `AdversarialModel`'s, `adv_warmup` and `epsilon_ramp`.
    """

    def __init__(self, warmup=0, ramp=0, names=("adv_warmup", "epsilon_ramp")):
        self.warmup = _non_negative_int(warmup, names[0])
        self.ramp = _non_negative_int(ramp, names[1])

    @property
    def active(self):
        return self.warmup > 0 or self.ramp > 0

    def scale(self, epoch):
        """Share of the budget in `epoch` (0-based, as Keras counts)."""
        if epoch < self.warmup:
            return 0.0
        if epoch < self.warmup + self.ramp:
            return (epoch - self.warmup + 1) / self.ramp
        return 1.0

    def callback(self, variable, log_name="adv_epsilon_scale"):
        """A callback that writes `scale(epoch)` into `variable` each epoch
        (and into the epoch's logs as `log_name`)."""
        return _ScheduleCallback(self, variable, log_name)


class _ScheduleCallback(keras.callbacks.Callback):
    def __init__(self, schedule, variable, log_name):
        super().__init__()
        self.schedule = schedule
        self.variable = variable
        self.log_name = log_name

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(self.schedule.scale(epoch))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs[self.log_name] = self.schedule.scale(epoch)

    def on_train_end(self, logs=None):
        self.variable.assign(1.0)  # evaluate after fit uses the full budget


def _non_negative_int(value, name):
    if value == 0:
        return 0
    return validation.check_positive(value, name, integer=True)
