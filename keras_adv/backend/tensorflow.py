"""TensorFlow implementation of the backend seam."""

import tensorflow as tf

# Whether AdversarialModel attacks in `train_step` before Keras's gradient
# computation starts (so it is not recorded), or inside `compute_loss`.
ATTACK_BEFORE_TRAIN_STEP = True


def value_and_input_grad(loss_fn, x):
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = loss_fn(x)
    return loss, tape.gradient(loss, x)


def compile_fn(fn, state):
    # TensorFlow variables are read and assigned inside graphs natively.
    del state
    return tf.function(fn, reduce_retracing=True)


def is_concrete(x):
    return not isinstance(x, tf.Tensor) or tf.executing_eagerly()
