"""The two-pass training step for FGSM with the mixed (or madry) objective.

Keras's own step plus an attack costs three passes for FGSM-mixed: the
attack's forward and backward, then the clean and adversarial passes. When
the attack's gradient equals the clean loss's input gradient, the clean
backward pass can give both the input gradient and the clean weight gradient
(TensorFlow's old NSL wrapper reused the clean pass this way): two passes.
This module decides when that is exact and runs it; the backend computes it.
"""

import keras
from keras import ops

from keras_adv import argument_validation as validation
from keras_adv import backend
from keras_adv.attacks.pgd import PGD

_CROSSENTROPY_CLASSES = (
    keras.losses.SparseCategoricalCrossentropy,
    keras.losses.CategoricalCrossentropy,
    keras.losses.BinaryCrossentropy,
)
_CROSSENTROPY_NAMES = (
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "binary_crossentropy",
)


_MODE_DEPENDENT = (
    keras.layers.BatchNormalization,
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.AlphaDropout,
)


def _leaf_layers(layer):
    children = getattr(layer, "layers", None)
    if not children:
        yield layer
        return
    for child in children:
        yield from _leaf_layers(child)


def _mode_independent(model):
    """No layer behaves differently in training (no Dropout, BatchNorm...).

    Keras layers that change with `training` are listed; a layer from outside
    Keras counts as mode-dependent (its `call` signature does not tell: even
    `Dense.call` takes `training`).
    """
    for layer in _leaf_layers(model):
        if not type(layer).__module__.startswith("keras."):
            return False
        if isinstance(layer, _MODE_DEPENDENT) or type(layer).__name__.startswith(
            "Random"  # augmentation layers: RandomFlip, RandomRotation...
        ):
            return False
        if getattr(layer, "activity_regularizer", None) is not None:
            return False  # a loss term that depends on the inputs
    return True


def _loss_from_logits(loss):
    """`from_logits` of a plain crossentropy loss; `None` for any other loss."""
    if isinstance(loss, str) and loss in _CROSSENTROPY_NAMES:
        return False
    if isinstance(loss, _CROSSENTROPY_CLASSES):
        config = loss.get_config()
        if config.get("label_smoothing") or config.get("ignore_class") is not None:
            return None
        return bool(config.get("from_logits"))
    return None


def _gradients_shared(model, x):
    """Whether the compiled loss's input gradient, in training mode, steers
    the attack as its own does (so one backward pass can serve both).

    When: the backend has the shared steps and `shared_pass` is on; no AWP
    (Keras's step runs at perturbed weights); a single float input, or a
    perturbation at a layer (its gradient comes from the same backward
    pass); an untargeted attack with its default loss; a compiled loss that
    is a plain crossentropy agreeing with the attack on `from_logits` (its
    input gradient is the attack's, scaled by positive per-example weights,
    which sign and L2 normalisation ignore); and the model the same in both
    modes (`attack_training=True`, or no mode-dependent layer).
    """
    attack = model.attack
    if backend.shared_pass_step is None or not model.shared_pass:
        return False
    if model.awp_gamma:
        return False
    if model.layer_perturbation is None:
        if isinstance(x, (dict, list, tuple)) or not validation.is_float(x):
            return False  # the general step explains that ids cannot be attacked
    if not isinstance(attack, PGD) or attack.targeted or attack.loss is not None:
        return False
    from_logits = _loss_from_logits(model.loss)
    if from_logits is None or attack.from_logits not in (None, from_logits):
        return False
    return bool(model.attack_training or _mode_independent(model))


def shared_pass_weights(model, x):
    """`(alpha, scale)` if the two-pass step is exact for `model`, else None.

    The objective's loss is `scale * ((1 - alpha) * L(x) + alpha * L(x_adv))`
    (`Mixed`: scale 1; `Regularized(m)`: scale `1 + m`).

    Exact when the gradients can be shared (`_gradients_shared`), the
    objective weighs the clean and adversarial losses linearly (`Mixed`,
    madry and `Regularized`), and the attack is one gradient step from `x`
    (FGSM without random start).
    """
    weights = model.objective.loss_weights
    if weights is None or sum(weights) <= 0:
        return None
    attack = model.attack
    if not isinstance(attack, PGD) or attack.steps != 1 or attack.random_start:
        return None
    if not _gradients_shared(model, x):
        return None
    scale = float(sum(weights))
    return weights[1] / scale, scale


def shared_trajectory(model, x):
    """Whether FreeLB's step can take `K` passes instead of `2K - 1`.

    The FreeLB objective with its PGD attack, where the gradients can be
    shared (`_gradients_shared`): the backward pass at each ascent point
    gives both the weight gradient FreeLB averages and the input gradient
    of the next ascent step, as in Zhu et al.'s Algorithm 1.
    """
    return bool(model.objective.uses_trajectory and _gradients_shared(model, x))


def trajectory_train_step(model, data):
    """Keras's `train_step` contract for FreeLB in `K` passes.

    The clean forward pass runs for the logs (`clean_loss`, the compiled
    metrics), without a backward pass; then `K` passes along the attack's
    ascent points, from its start (a random one with `random_start`), each
    giving the point's weight gradient and the next point; their mean
    weight gradient is applied. The same update as the general step (tested
    equal), at about half its passes.
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    attack, epsilon, forward = _step_parts(model)
    y_pred = ops.stop_gradient(forward(x))
    clean = keras.Model.compute_loss(model, x, y, y_pred, sample_weight)
    center, step_forward = _attacked(model, x, forward)
    start = center
    if attack.random_start:
        start = attack.random_start_points(center, epsilon)[0]

    def loss_fn(inputs, outputs):
        return keras.Model.compute_loss(model, inputs, y, outputs, sample_weight)

    def ascend(point, input_grad):
        return attack.ascent_step(center, point, input_grad, epsilon)

    y_pred_adv, adv = backend.trajectory_step(
        step_forward,
        model.trainable_variables,
        model.optimizer,
        start,
        loss_fn,
        ascend,
        attack.steps,
        frozen=model.non_trainable_variables,
    )
    model.record_losses(x, clean, adv, model.objective.combine(clean, adv, None, None))
    model.record_adversarial_metrics(y, y_pred_adv, sample_weight)
    return model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


def _step_parts(model):
    """`(attack, epsilon, forward)` of a shared step: the training attack
    (unclipped at a layer), its scheduled budget, the model in training mode."""
    site = model.layer_perturbation
    attack = model.attack if site is None else model._training_attack()
    epsilon = attack.epsilon * ops.cast(model.epsilon_scale, "float32")

    def forward(inputs):
        return model._forward(inputs, training=True)

    return attack, epsilon, forward


def _attacked(model, x, forward):
    """`(start, forward of it)`: `x` itself, or at a layer the zero
    perturbation there and the model with it added (`prepare`)."""
    site = model.layer_perturbation
    if site is None:
        return x, forward
    relative, per_token = model.relative_budget, model.per_token
    start, at_layer, _ = site.prepare(forward, x, relative, per_token)
    return start, at_layer


def train_step(model, data, alpha, scale=1.0):
    """Keras's `train_step` contract (metrics dict) for the two-pass step.

    `alpha` and `scale` as `shared_pass_weights` gives them: the backend
    mixes the two gradients with `alpha`; the losses it differentiates are
    `scale` times the compiled loss (an input gradient scaled by a positive
    constant gives the same FGSM step).
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    attack, epsilon, forward = _step_parts(model)
    start, step_forward = _attacked(model, x, forward)

    def loss_fn(inputs, y_pred):
        loss = keras.Model.compute_loss(model, inputs, y, y_pred, sample_weight)
        return loss if scale == 1.0 else scale * loss

    def adversarial(inputs, input_grad):
        return attack.ascent_step(inputs, inputs, input_grad, epsilon)

    y_pred, y_pred_adv, clean, adv = backend.shared_pass_step(
        step_forward,
        model.trainable_variables,
        model.optimizer,
        start,
        loss_fn,
        adversarial,
        alpha,
        frozen=model.non_trainable_variables,
    )
    if scale != 1.0:
        clean, adv = clean / scale, adv / scale
    model.record_losses(x, clean, adv, model.objective.combine(clean, adv, None, None))
    model.record_adversarial_metrics(y, y_pred_adv, sample_weight)
    return model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
