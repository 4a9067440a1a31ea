"""Where a long sweep is: a line per epoch and per cell, with the time left.

Each line names the trained model's place in the sweep (model 2 of 4, its
training budget), the epoch, the training's accuracy (adversarial accuracy
for an adversarially trained model) and, with robust early stopping, the
held-out robust accuracy so far; then the time left for this model and for
the sweep's remaining trainings, from the mean epoch time so far (models
still to train are assumed to cost as much per epoch as this one).
"""

import time

import keras

from keras_adv.evaluation.eta import duration


class Progress(keras.callbacks.Callback):
    """One line per epoch through `say`, with the time left.

    Args:
        say: called with each line (e.g. `print`).
        label: what is being trained, e.g. `"model 2/4 (train eps 0.05)"`.
        models_after: trainings of the sweep still to come after this one.
        clock: the time source. Defaults to `time.perf_counter`.
    """

    def __init__(self, say, label, models_after=0, clock=time.perf_counter):
        super().__init__()
        self.say, self.label, self.models_after = say, label, models_after
        self.clock = clock

    def on_train_begin(self, logs=None):
        self.start = self.clock()
        epochs = self.params.get("epochs", 0)
        self.say(f"{self.label} | training, {epochs} epoch{'s' * (epochs != 1)}")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        done, total = epoch + 1, self.params.get("epochs", epoch + 1)
        per_epoch = (self.clock() - self.start) / done
        left = per_epoch * (total - done)
        parts = [f"{self.label} | epoch {done}/{total}"]
        for key, name in (
            ("accuracy", "accuracy"),
            ("adv_accuracy", "adv accuracy"),
            ("adv_robust_accuracy", "held-out robust accuracy"),
        ):
            if key in logs:
                parts.append(f"{name} {float(logs[key]):.3f}")
        parts.append(f"{per_epoch:.1f} s/epoch")
        sweep_left = left + per_epoch * total * self.models_after
        tail = f"about {duration(left)} left for this model"
        if self.models_after:
            tail += f", {duration(sweep_left)} for the sweep's trainings"
        parts.append(tail)
        self.say(" | ".join(parts))


def cell_line(cell):
    """One finished cell of a sweep: budgets, attack and what it measured."""
    return (
        f"train eps {cell['train_epsilon']:g} | {cell['attack']} eps "
        f"{cell['attack_epsilon']:g} | robust acc {cell['robust_accuracy']:.3f} "
        f"| drift {cell['prediction_drift']:.3f} | flip {cell['flip_rate']:.3f}"
    )
