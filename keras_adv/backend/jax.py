"""JAX implementation of the backend seam."""

import jax
import keras

from keras_adv.backend.common import mean_gradients
from keras_adv.backend.common import mix_gradients

# Attacks with at most this many steps unroll them: XLA's CPU `while` loop is
# slower than the same steps unrolled (benchmarks/jax_fit_speed.py measures
# it; the README quotes the numbers); longer attacks keep a loop, so compile
# time stays bounded.
MAX_UNROLLED_STEPS = 10


def attack_before_step(state_variables, args, attack):
    """Runs `attack()` on the weights in the stateless step's `state`.

    Keras's JAX `train_step(state, data)` takes the variables' values as
    `state`. The attack runs in a `keras.StatelessScope` over them, outside
    the function Keras differentiates (so no attack step is traced under
    `jax.value_and_grad`); the random state it advances goes back into the
    `state` Keras's step receives. Returns `(x_adv, args)`.
    """
    state, data = args
    x_adv, state = _on_state(state_variables(), state, attack)
    return x_adv, (state, data)


def stateful_train_step(state_variables, args, step):
    """Keras's JAX `train_step(state, data)` contract for a stateful `step`.

    `step(data)` reads and assigns Keras variables and returns the logs, as
    a TensorFlow or PyTorch train step does; here it runs on the values in
    `state`, and the values it leaves become the new state. Returns
    `(logs, state)`.
    """
    state, data = args
    return _on_state(state_variables(), state, lambda: step(data))


def shift_weights_before_step(state_variables, args, deltas):
    """Adds `deltas` to the trainable values in `state` (Keras's JAX step)."""
    state, data = args
    return _shifted(state, deltas, 1.0), data


def shift_weights_after_step(state_variables, result, deltas):
    """Subtracts `deltas` from the trainable values in the step's new state."""
    logs, state = result
    return logs, _shifted(state, deltas, -1.0)


def _shifted(state, deltas, sign):
    trainable = [w + sign * d for w, d in zip(state[0], deltas, strict=True)]
    return (trainable, *state[1:])


def weight_grads(loss_fn, variables, frozen=()):
    """`d loss_fn() / d variables`, every assignment inside dropped.

    Runs inside `attack_before_step`'s scope: the variables' values there
    (the step's `state`) are read and mapped into a scope of their own.
    """
    frozen_values = [(v, v.value) for v in frozen]

    def loss_of(values):
        mapping = list(zip(variables, values, strict=True)) + frozen_values
        with keras.StatelessScope(state_mapping=mapping):
            return loss_fn()

    return jax.grad(loss_of)([v.value for v in variables])


def _on_state(groups, state, fn):
    """`(fn(), new state)`: `fn` runs in a `keras.StatelessScope` over `state`.

    `state` holds the values of the variables in `groups` (trainable,
    non-trainable, optimizer and metrics variables: Keras's JAX trainer's
    order), group by group.
    """
    mapping = [
        pair
        for variables, values in zip(groups, state, strict=True)
        for pair in zip(variables, values, strict=True)
    ]
    with keras.StatelessScope(state_mapping=mapping) as scope:
        result = fn()
    return result, tuple([scope.get_current_value(v) for v in g] for g in groups)


# Whether attacks may run the model in training mode (`attack_training=True`).
TRAINING_MODE_ATTACKS = False  # BatchNorm updates inside jax.grad would leak tracers


def value_and_input_grad(loss_fn, x, has_aux=False):
    return jax.value_and_grad(loss_fn, has_aux=has_aux)(x)


def differentiable_input_grad(loss_fn, x):
    # Traced under Keras's value_and_grad over the weights: differentiable.
    return jax.grad(loss_fn)(x)


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


def shared_pass_step(
    forward, weights, optimizer, x, loss_fn, adversarial, alpha, frozen=()
):
    """The two-pass mixed-objective step; see `tensorflow.py` for the contract.

    Runs inside `stateful_train_step`'s scope: variables read their values
    from the state. One `jax.value_and_grad` of the clean loss gives the
    input gradient (for the attack) and the clean weight gradient together.
    """
    loss_of = _stateless_loss(forward, weights, optimizer, loss_fn, frozen)
    values = [v.value for v in weights]
    argnums = (0, 1) if alpha < 1 else 1
    (_, (clean, y_pred)), clean_grads = jax.value_and_grad(
        loss_of, argnums=argnums, has_aux=True
    )(values, x)
    clean_grads, input_grad = clean_grads if alpha < 1 else ([], clean_grads)
    x_adv = jax.lax.stop_gradient(adversarial(x, input_grad))
    (_, (adv, y_pred_adv)), grads = jax.value_and_grad(loss_of, has_aux=True)(
        values, x_adv
    )
    if alpha < 1:
        grads = [
            mix_gradients(c, a, alpha) for c, a in zip(clean_grads, grads, strict=True)
        ]
    _apply(optimizer, weights, grads, values)
    return y_pred, y_pred_adv, clean, adv


def _stateless_loss(forward, weights, optimizer, loss_fn, frozen):
    """`(weight values, inputs) -> (scaled loss, (loss, y_pred))` for
    `jax.value_and_grad`: the weights read the values given, the other
    variables (`frozen`, the optimizer's) their current ones."""
    fixed = [(v, v.value) for v in frozen]
    fixed += [(v, v.value) for v in optimizer.variables]

    def loss_of(values, inputs):
        mapping = list(zip(weights, values, strict=True)) + fixed
        with keras.StatelessScope(state_mapping=mapping):
            y_pred = forward(inputs)
            loss = loss_fn(inputs, y_pred)
            scaled = optimizer.scale_loss(loss)
        return scaled, (loss, y_pred)

    return loss_of


def _apply(optimizer, weights, grads, values):
    """Applies `grads` to the weights (now at `values`) and assigns the results.

    `stateless_apply`, not `apply`: LossScaleOptimizer's `apply` assigns
    inside a `cond`, which would leak tracers here.
    """
    optimizer_variables = optimizer.variables
    values, optimizer_values = optimizer.stateless_apply(
        [v.value for v in optimizer_variables], grads, values
    )
    for variable, value in zip(weights, values, strict=True):
        variable.assign(value)
    for variable, value in zip(optimizer_variables, optimizer_values, strict=True):
        variable.assign(value)


def trajectory_step(
    forward, weights, optimizer, start, loss_fn, ascend, steps, frozen=()
):
    """FreeLB's step in `steps` passes; see `tensorflow.py` for the contract.

    Runs inside `stateful_train_step`'s scope, as `shared_pass_step` does:
    one `jax.value_and_grad` per point gives its input gradient and weight
    gradient together.
    """
    loss_of = _stateless_loss(forward, weights, optimizer, loss_fn, frozen)
    values = [v.value for v in weights]
    point, passes, losses = start, [], []
    for t in range(steps):  # K is small and static: unrolled
        (_, (loss, y_pred)), (grads, input_grad) = jax.value_and_grad(
            loss_of, argnums=(0, 1), has_aux=True
        )(values, point)
        passes.append(grads)
        losses.append(loss)
        if t + 1 < steps:
            point = jax.lax.stop_gradient(ascend(point, input_grad))
    _apply(optimizer, weights, mean_gradients(passes), values)
    return y_pred, sum(losses) / steps
