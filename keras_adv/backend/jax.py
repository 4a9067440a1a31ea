"""JAX implementation of the backend seam."""

import jax
import keras

# Attacks with at most this many steps unroll them: XLA's CPU `while` loop
# made PGD-7 training 1.17x slower than the same steps unrolled
# (benchmarks/jax_fit_speed.py); longer attacks keep a loop, so compile time
# stays bounded.
MAX_UNROLLED_STEPS = 10


def attack_before_step(model, args, attack):
    """Runs `attack()` on the weights in the stateless step's `state`.

    Keras's JAX `train_step(state, data)` takes the variables' values as
    `state`. The attack runs in a `keras.StatelessScope` over them, outside
    the function Keras differentiates (so no attack step is traced under
    `jax.value_and_grad`); the random state it advances goes back into the
    `state` Keras's step receives. Returns `(x_adv, args)`.
    """
    state, data = args
    trainable, non_trainable, *rest = state
    mapping = list(zip(model.trainable_variables, trainable, strict=True))
    mapping += list(zip(model.non_trainable_variables, non_trainable, strict=True))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        x_adv = attack()
    non_trainable = [scope.get_current_value(v) for v in model.non_trainable_variables]
    return x_adv, ((trainable, non_trainable, *rest), data)


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
