"""TensorFlow implementation of the backend seam."""

import keras
import tensorflow as tf

from keras_adv.backend.common import attack_before_step  # noqa: F401
from keras_adv.backend.common import mix_gradients
from keras_adv.backend.common import shift_weights_after_step  # noqa: F401
from keras_adv.backend.common import shift_weights_before_step  # noqa: F401
from keras_adv.backend.common import stateful_train_step  # noqa: F401

# Attacks keep their steps in a loop: unrolling measured no faster here.
MAX_UNROLLED_STEPS = 0


# Whether attacks may run the model in training mode (`attack_training=True`).
TRAINING_MODE_ATTACKS = True


def value_and_input_grad(loss_fn, x, has_aux=False):
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = loss_fn(x)
    loss = value[0] if has_aux else value
    # A loss that does not depend on x (a gradient-masking model) has a zero
    # gradient, not None.
    grad = tape.gradient(loss, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return value, grad


def differentiable_input_grad(loss_fn, x):
    # Inside Keras's train_step tape, the inner tape's gradient is recorded.
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = loss_fn(x)
    return tape.gradient(loss, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)


def weight_grads(loss_fn, variables, frozen=()):
    # The variables' values go through a StatelessScope, so that whatever
    # `loss_fn` assigns (BatchNorm statistics, metrics) is dropped after.
    with tf.GradientTape() as tape:
        values = [tf.identity(v.value) for v in variables]
        tape.watch(values)
        mapping = list(zip(variables, values, strict=True)) + [
            (v, v.value) for v in frozen
        ]
        with keras.StatelessScope(state_mapping=mapping):
            loss = loss_fn()
    return tape.gradient(
        loss, values, unconnected_gradients=tf.UnconnectedGradients.ZERO
    )


def compile_fn(fn, state):
    # TensorFlow variables are read and assigned inside graphs natively.
    del state
    return tf.function(_Distinct(fn), reduce_retracing=True)


class _Distinct:
    """A callable of its own for each compiled function.

    TensorFlow counts traces per code object and warns about "excessive
    retracing" when many closures of one function (one per attack and model)
    each trace once; an object without `__code__` is counted on its own.
    """

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args):
        return self.fn(*args)


def is_concrete(x):
    return not isinstance(x, tf.Tensor) or tf.executing_eagerly()


def unscale_for_distribution(value):
    """Undoes the 1/replicas scaling Keras losses apply under tf.distribute."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return value * tf.cast(replicas, value.dtype) if replicas > 1 else value


def shared_pass_step(
    forward, weights, optimizer, x, loss_fn, adversarial, alpha, frozen=()
):
    """Trains one mixed-objective step in two passes instead of three.

    The clean backward pass yields the input gradient (for the attack) and
    the clean weight gradient together; then one adversarial pass.

    Args:
        forward: `inputs -> y_pred`, the model in training mode.
        weights: the trainable variables `forward` reads.
        optimizer: the `keras.optimizers.Optimizer` that applies gradients.
        x: the input batch (one tensor).
        loss_fn: `(inputs, y_pred) -> loss`, the compiled loss.
        adversarial: `(x, input_gradient) -> x_adv`.
        alpha: weight of the adversarial loss; 1 skips the clean weight
            gradient.
        frozen: the other variables `forward` reads (non-trainable
            weights), held at their values for the step (JAX).

    Returns:
        `(y_pred, y_pred_adv, clean_loss, adv_loss)`.
    """
    with tf.GradientTape() as tape:
        tape.watch(x)
        y_pred = forward(x)
        clean = loss_fn(x, y_pred)
        scaled = optimizer.scale_loss(clean)
    sources = (list(weights) if alpha < 1 else []) + [x]
    *clean_grads, input_grad = tape.gradient(scaled, sources)
    x_adv = tf.stop_gradient(adversarial(x, input_grad))
    with tf.GradientTape() as tape:
        y_pred_adv = forward(x_adv)
        adv = loss_fn(x_adv, y_pred_adv)
        scaled = optimizer.scale_loss(adv)
    grads = tape.gradient(scaled, weights)
    if alpha < 1:
        grads = [_mix(c, a, alpha) for c, a in zip(clean_grads, grads, strict=True)]
    optimizer.apply_gradients(zip(grads, weights, strict=True))
    return y_pred, y_pred_adv, clean, adv


def trajectory_step(
    forward, weights, optimizer, start, loss_fn, ascend, steps, frozen=()
):
    """FreeLB's step in `steps` passes: each gives the weight and input gradient.

    Pass `t` differentiates the loss at `point_t` (`point_0 = start`) with
    respect to the weights and the point together; `ascend(point_t, input
    gradient)` gives `point_{t+1}`; the optimizer applies the mean of the
    passes' weight gradients (an embedding's stays sparse, the passes'
    slices scaled and concatenated, as TensorFlow's own gradient of the mean
    loss gives it).

    Args:
        forward: `inputs -> y_pred`, the model in training mode.
        weights: the trainable variables `forward` reads.
        optimizer: the `keras.optimizers.Optimizer` that applies gradients.
        start: the first point (one tensor).
        loss_fn: `(inputs, y_pred) -> loss`, the compiled loss.
        ascend: `(point, input_gradient) -> next point`.
        steps: the number of passes, `K`.
        frozen: the other variables `forward` reads (JAX).

    Returns:
        `(y_pred at the last point, mean loss over the points)`.
    """
    del frozen
    point, passes, values = start, [], []
    for t in range(steps):  # K is small and static: unrolled
        with tf.GradientTape() as tape:
            tape.watch(point)
            y_pred = forward(point)
            loss = loss_fn(point, y_pred)
            scaled = optimizer.scale_loss(loss)
        *grads, input_grad = tape.gradient(scaled, list(weights) + [point])
        passes.append(grads)
        values.append(loss)
        if t + 1 < steps:
            point = tf.stop_gradient(ascend(point, input_grad))
    grads = [_mean(list(grads)) for grads in zip(*passes, strict=True)]
    optimizer.apply_gradients(
        [(g, w) for g, w in zip(grads, weights, strict=True) if g is not None]
    )
    return y_pred, tf.reduce_mean(tf.stack(values))


def _mean(grads):
    """The mean of one weight's gradients over the passes, sparse if they are."""
    used = [g for g in grads if g is not None]
    if not used:
        return None
    count = float(len(grads))
    if all(isinstance(g, tf.IndexedSlices) for g in used):
        return tf.IndexedSlices(
            tf.concat([g.values / count for g in used], 0),
            tf.concat([g.indices for g in used], 0),
            used[0].dense_shape,
        )
    return tf.add_n([tf.convert_to_tensor(g) for g in used]) / count


def _mix(clean, adv, alpha):
    """`mix_gradients` that keeps an embedding's gradient sparse.

    TensorFlow gives an embedding table's gradient as `tf.IndexedSlices`,
    and the gradient of a sum of two losses through it as the two slices
    concatenated; Keras's optimizers then see every row once per use (Adam
    squares each before they are summed). Concatenating the scaled slices
    here gives the optimizer exactly what Keras's own step would.
    """
    if isinstance(clean, tf.IndexedSlices) and isinstance(adv, tf.IndexedSlices):
        return tf.IndexedSlices(
            tf.concat([(1.0 - alpha) * clean.values, alpha * adv.values], 0),
            tf.concat([clean.indices, adv.indices], 0),
            clean.dense_shape,
        )
    if isinstance(clean, tf.IndexedSlices) and adv is None:
        return tf.IndexedSlices(
            (1.0 - alpha) * clean.values, clean.indices, clean.dense_shape
        )
    if isinstance(clean, tf.IndexedSlices) or isinstance(adv, tf.IndexedSlices):
        clean, adv = (
            None if g is None else tf.convert_to_tensor(g) for g in (clean, adv)
        )
    return mix_gradients(clean, adv, alpha)
