"""JAX implementation of the backend seam."""

import jax
import keras

# Whether AdversarialModel attacks in `train_step` before Keras's gradient
# computation starts (so it is not recorded), or inside `compute_loss`.
ATTACK_BEFORE_TRAIN_STEP = False  # train_step is stateless under JAX

# Whether attacks may run the model in training mode (`attack_training=True`).
TRAINING_MODE_ATTACKS = False  # BatchNorm updates inside jax.grad would leak tracers


def value_and_input_grad(loss_fn, x, has_aux=False):
    return jax.value_and_grad(loss_fn, has_aux=has_aux)(x)


def compile_fn(fn, state):
    """`jax.jit` with Keras variables passed in and out explicitly.

    Inside `jax.jit` a Keras variable can neither be read as a constant (it
    would go stale) nor assigned (the tracer would leak), so `state` travels
    through a `keras.StatelessScope` and its new values are assigned after.
    """
    state = list(state)

    @jax.jit
    def stateless(values, *args):
        mapping = list(zip(state, values, strict=True))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            outputs = fn(*args)
        return outputs, [scope.get_current_value(v) for v in state]

    def call(*args):
        outputs, values = stateless([v.value for v in state], *args)
        for variable, value in zip(state, values, strict=True):
            variable.assign(value)
        return outputs

    return call


def is_concrete(x):
    return not isinstance(x, jax.core.Tracer)


def unscale_for_distribution(value):
    return value  # Keras scales losses for distribution on TensorFlow only


# No two-pass mixed step: the step here is Keras's own (see tensorflow.py).
shared_pass_step = None
