"""The training recipe of the `keras-adv` job, built from `SweepSettings`.

The fields a paper's training section names, each a `SweepSettings` field,
a config key and a flag: the optimizer (`adam`, or `sgd` with momentum and
Nesterov), decoupled weight decay, the learning-rate schedule (`constant`,
`piecewise`, `cosine`, or the `cyclic` triangle of Wong et al. 2020), the
training attack's step size and random start, the objective's parameter,
augmentation (random crop with padding, horizontal flip: Keras preprocessing
layers in the input pipeline, so on every backend), and robust early
stopping (Rice et al. 2020): a share of the training data held out, the
training attack run on it after every epoch, and the weights of the epoch
with the best robust accuracy kept; and the precision (`float32`, or Keras's
`mixed_float16` / `mixed_bfloat16` dtype policies). The defaults are the
job's recipe from before these fields existed (Adam at 1e-3, constant, no
augmentation, float32), so old results folders resume unchanged.
"""

import contextlib
import inspect
import math

import keras
import numpy as np

from keras_adv import argument_validation as validation
from keras_adv.attacks import names as attack_names
from keras_adv.callbacks.adversarial_monitor import AdversarialMonitor
from keras_adv.training import objectives

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "piecewise", "cosine", "cyclic")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
SGD_MOMENTUM = 0.9  # sgd's momentum when none is given (the literature's)
PIECEWISE_MILESTONES = (0.5, 0.75)  # shares of training (Madry et al., Rice et al.)
PIECEWISE_FACTOR = 0.1  # the learning rate is divided by 10 at each milestone
CYCLIC_PEAK = 0.4  # the cyclic schedule peaks after 2/5 of the epochs
ROBUST_ACCURACY = "adv_robust_accuracy"  # AdversarialMonitor's key in `logs`


def check(settings):
    """Refuses recipe fields that are out of range or that do not apply.

    A field set for a choice that ignores it (`momentum` with Adam,
    `lr_milestones` without the piecewise schedule, `trades_beta` with the
    madry objective) is refused rather than silently unused.

    Raises:
        ValueError: naming the field, the value and the fix.
    """
    s = settings
    _choice(s.optimizer, OPTIMIZERS, "optimizer")
    _choice(s.lr_schedule, SCHEDULES, "lr_schedule")
    _choice(s.precision, PRECISIONS, "precision")
    validation.check_positive(s.learning_rate, "learning_rate")
    _number(s.weight_decay, "weight_decay", low=0.0)
    _only_for(
        s.momentum is not None or s.nesterov,
        s.optimizer == "sgd",
        "momentum and nesterov",
        "optimizer = 'sgd'",
        s.optimizer,
    )
    if s.momentum is not None:
        _number(s.momentum, "momentum", low=0.0, high=1.0, open_high=True)
    validation.check_bool(s.nesterov, "nesterov")
    _only_for(
        s.lr_milestones is not None,
        s.lr_schedule == "piecewise",
        "lr_milestones",
        "lr_schedule = 'piecewise'",
        s.lr_schedule,
    )
    if s.lr_milestones is not None:
        milestones = tuple(s.lr_milestones)
        if (
            not milestones
            or any(not 0 < m < 1 for m in milestones)
            or list(milestones) != sorted(set(milestones))
        ):
            raise ValueError(
                "Argument `lr_milestones` must be increasing shares of training "
                "in (0, 1), such as [0.5, 0.75]. "
                f"Received: lr_milestones={list(milestones)}"
            )
    _only_for(
        s.mixed_alpha is not None,
        s.objective == "mixed",
        "mixed_alpha",
        "objective = 'mixed'",
        s.objective,
    )
    _only_for(
        s.trades_beta is not None,
        s.objective == "trades",
        "trades_beta",
        "objective = 'trades'",
        s.objective,
    )
    _only_for(
        s.gradalign_lam is not None,
        s.objective == "gradalign",
        "gradalign_lam",
        "objective = 'gradalign'",
        s.objective,
    )
    _only_for(
        bool(s.awp_warmup), bool(s.awp_gamma), "awp_warmup", "awp_gamma > 0",
        s.awp_gamma,
    )  # fmt: skip
    objective(s)  # the objective's own range checks
    validation.check_positive(
        s.train_relative_step_size, "train_relative_step_size", allow_none=True
    )
    if s.train_random_start is not None:
        validation.check_bool(s.train_random_start, "train_random_start")
    for field, parameter in (
        ("train_relative_step_size", "step_size"),
        ("train_random_start", "random_start"),
    ):
        if getattr(s, field) is not None:
            attack = attack_names.get(s.train_attack)
            if parameter not in inspect.signature(type(attack)).parameters:
                raise ValueError(
                    f"Argument `{field}` does not apply to the training attack "
                    f"{s.train_attack!r}, which has no `{parameter}`: use fgsm, "
                    "pgd<steps> or mim<steps>, or leave it unset."
                )
    if (
        isinstance(s.crop_padding, bool)
        or not isinstance(s.crop_padding, int)
        or s.crop_padding < 0
    ):
        raise ValueError(
            "Argument `crop_padding` must be an integer >= 0 (pixels; 0 turns "
            f"random cropping off). Received: crop_padding={s.crop_padding!r}"
        )
    validation.check_bool(s.flip, "flip")
    _number(s.early_stopping_split, "early_stopping_split", low=0.0, high=0.5)


def _choice(value, choices, name):
    if value not in choices:
        raise ValueError(
            f"Argument `{name}` must be one of {', '.join(choices)}. "
            f"Received: {name}={value!r}"
        )


def _number(value, name, low, high=math.inf, open_high=False):
    """A finite number in [low, high] (or [low, high) with `open_high`)."""
    ok = (
        validation.is_number(value)
        and math.isfinite(value)
        and value >= low
        and (value < high if open_high else value <= high)
    )
    if not ok:
        right = ")" if open_high else "]"
        raise ValueError(
            f"Argument `{name}` must be a number in [{low:g}, {high:g}{right}. "
            f"Received: {name}={value!r}"
        )


def _only_for(given, applies, names, needs, chosen):
    if given and not applies:
        raise ValueError(
            f"Argument(s) {names} only apply with {needs}; this recipe has "
            f"{chosen!r}. Remove them or change that choice."
        )


def objective(settings):
    """The training objective with its parameter (`mixed_alpha`, `trades_beta`,
    `gradalign_lam`)."""
    if settings.objective == "mixed" and settings.mixed_alpha is not None:
        return objectives.Mixed(alpha=settings.mixed_alpha)
    if settings.objective == "trades" and settings.trades_beta is not None:
        return objectives.Trades(beta=settings.trades_beta)
    if settings.objective == "gradalign" and settings.gradalign_lam is not None:
        return objectives.GradAlign(lam=settings.gradalign_lam)
    return objectives.get(settings.objective)


def training_attack(settings, epsilon):
    """The training attack at `epsilon`, with the recipe's step size and start."""
    attack = attack_names.get(settings.train_attack, epsilon, settings.seed)
    if (
        settings.train_relative_step_size is None
        and settings.train_random_start is None
    ):
        return attack
    config = attack.get_config()
    if settings.train_relative_step_size is not None:
        config["step_size"] = settings.train_relative_step_size * epsilon or None
    if settings.train_random_start is not None:
        config["random_start"] = settings.train_random_start
    return type(attack).from_config(config)


@keras.saving.register_keras_serializable(package="keras_adv")
class Triangular(keras.optimizers.schedules.LearningRateSchedule):
    """Up linearly from 0 to `peak`, then down linearly to 0 at `total_steps`.

    The cyclic (one-cycle) schedule of Wong et al. 2020, "Fast is better
    than free", arXiv:2001.03994: their `np.interp(t, [0, epochs * 2 // 5,
    epochs], [0, lr_max, 0])` evaluated after each step (step `i` trains at
    the rate of `i + 1`), so no step trains at rate 0.

    Args:
        peak: the highest learning rate.
        peak_step: the step at which it is reached.
        total_steps: the step at which the rate is back at 0.
    """

    def __init__(self, peak, peak_step, total_steps):
        if not 0 < peak_step < total_steps:
            raise ValueError(
                "Triangular needs 0 < peak_step < total_steps. "
                f"Received: peak_step={peak_step}, total_steps={total_steps}"
            )
        self.peak = float(peak)
        self.peak_step = int(peak_step)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        t = keras.ops.cast(step, "float32") + 1.0
        up = t / self.peak_step
        down = (self.total_steps - t) / (self.total_steps - self.peak_step)
        return self.peak * keras.ops.clip(keras.ops.minimum(up, down), 0.0, 1.0)

    def get_config(self):
        return {
            "peak": self.peak,
            "peak_step": self.peak_step,
            "total_steps": self.total_steps,
        }


@contextlib.contextmanager
def dtype_policy(settings):
    """Keras's global dtype policy set to `settings.precision`, then restored.

    Layers built inside take the policy (variables in float32, computations
    in float16 or bfloat16) and keep it afterwards, and `compile` on a model
    built inside wraps its optimizer in a `LossScaleOptimizer` for
    `mixed_float16`, as Keras does for any model under that policy
    (https://keras.io/api/mixed_precision/). The global policy is restored
    on the way out, so nothing else in the process changes precision.
    """
    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_dtype_policy(settings.precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(before)


def learning_rate(settings, steps_per_epoch):
    """The learning rate or schedule of `settings` (steps count batches)."""
    rate, total = settings.learning_rate, settings.epochs * steps_per_epoch
    if settings.lr_schedule == "piecewise":
        milestones = settings.lr_milestones or PIECEWISE_MILESTONES
        boundaries = sorted({max(1, round(m * total)) for m in milestones})
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            boundaries, [rate * PIECEWISE_FACTOR**i for i in range(len(boundaries) + 1)]
        )
    if settings.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(rate, decay_steps=total)
    if settings.lr_schedule == "cyclic":
        peak_epochs = max(1, int(settings.epochs * CYCLIC_PEAK))
        if total < 2:
            return rate  # one step: the triangle has no room
        peak = min(peak_epochs * steps_per_epoch, total - 1)
        return Triangular(rate, peak, total)
    return rate


def optimizer(settings, steps_per_epoch):
    """A fresh Keras optimizer for `settings`; weight decay is decoupled.

    Keras's `weight_decay` shrinks each weight by `lr * weight_decay` per
    step (Loshchilov and Hutter), not PyTorch SGD's L2 term added to the
    gradient; with momentum 0.9 PyTorch's 5e-4 decays about as fast as 5e-3
    here.
    """
    rate = learning_rate(settings, steps_per_epoch)
    decay = settings.weight_decay or None
    if settings.optimizer == "sgd":
        momentum = SGD_MOMENTUM if settings.momentum is None else settings.momentum
        return keras.optimizers.SGD(
            rate, momentum=momentum, nesterov=settings.nesterov, weight_decay=decay
        )
    return keras.optimizers.Adam(rate, weight_decay=decay)


def augmenting(settings):
    """Whether the recipe augments its training batches."""
    return settings.crop_padding > 0 or settings.flip


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled training batches, each randomly cropped and flipped.

    Random crop with padding (zero-pad by `padding` pixels, then crop a
    random window of the original size) and a random horizontal flip, the
    augmentation of the CIFAR-10 literature, by Keras's `RandomCrop` and
    `RandomFlip` layers: they run on every backend. The padding is done once
    up front, so each batch costs only the crop and the flip.

    Args:
        x: images `(n, height, width, channels)`.
        y: labels.
        batch_size: examples per batch.
        padding: pixels of zero padding per side; 0 does no cropping.
        flip: flip each image left-right with probability 1/2.
        seed: seeds the shuffle and the layers.
    """

    def __init__(self, x, y, batch_size, padding, flip, seed):
        super().__init__()
        if np.ndim(x) != 4:
            raise ValueError(
                "Random crop and flip need images (n, height, width, channels); "
                f"the training data have shape {np.shape(x)}. Turn off "
                "crop_padding and flip for these data."
            )
        height, width = x.shape[1:3]
        self.x = np.pad(x, ((0, 0), (padding,) * 2, (padding,) * 2, (0, 0)))
        self.y = np.asarray(y)
        self.batch_size = batch_size
        layers = []
        if padding:
            layers.append(keras.layers.RandomCrop(height, width, seed=seed))
        if flip:
            layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
        self.augment = keras.layers.Pipeline(layers)
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(self.x))

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        return self.augment(self.x[rows], training=True), self.y[rows]

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.x))


def split_for_early_stopping(settings, x, y):
    """`(x, y)` to train on and `(x, y)` held out, by `early_stopping_split`."""
    held = round(settings.early_stopping_split * len(x))
    if held == 0:
        return (x, y), None
    if held == len(x):
        raise ValueError(
            f"early_stopping_split={settings.early_stopping_split} leaves no "
            f"training data of {len(x)} examples."
        )
    order = np.random.default_rng(settings.seed).permutation(len(x))
    return (x[order[held:]], y[order[held:]]), (x[order[:held]], y[order[:held]])


def early_stopping_callbacks(settings, epsilon, held_out, from_logits):
    """The training attack on the held-out data after every epoch, logged as
    `adv_robust_accuracy`, and Keras's `EarlyStopping` keeping the weights of
    the epoch where it was highest (it never stops training early: Rice et
    al. train the whole schedule and keep the best checkpoint)."""
    return [
        AdversarialMonitor(
            held_out,
            attack=training_attack(settings, epsilon),
            max_examples=len(held_out[0]),
            from_logits=from_logits,
        ),
        keras.callbacks.EarlyStopping(
            monitor=ROBUST_ACCURACY,
            mode="max",
            patience=settings.epochs,
            restore_best_weights=True,
        ),
    ]


def early_stopping_record(history):
    """Held-out robust accuracy of the last epoch and of the best (kept) one."""
    values = history.get(ROBUST_ACCURACY)
    if not values:
        return None
    best = int(np.argmax(values))
    return {
        "last_epoch": len(values),
        "last_robust_accuracy": float(values[-1]),
        "best_epoch": best + 1,
        "best_robust_accuracy": float(values[best]),
    }
