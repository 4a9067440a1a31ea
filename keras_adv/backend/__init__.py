"""The only place keras-adv touches a deep learning framework.

The implementation is chosen once, at import, from `keras.backend.backend()`.
Everything outside this package is written in `keras.ops` / `keras.random`.

Public functions. They work on tensors, callables and Keras variables, never
on keras-adv classes (the layers above call down, not the other way):

- `value_and_input_grad(loss_fn, x, has_aux=False)`: `(loss_fn(x), d loss_fn
  / d x)` where `loss_fn` maps a tensor to a scalar tensor (with `has_aux`, to
  a pair `(scalar, aux)`, and only the scalar is differentiated, as in
  `jax.value_and_grad`). Gradients are taken with respect to the input only;
  model variables are treated as constants.
- `differentiable_input_grad(loss_fn, x)`: `d loss_fn / d x`, itself
  differentiable with respect to the model's weights (double
  backpropagation, for a loss term made of input gradients: GradAlign).
  Called inside the region Keras's `train_step` differentiates.
- `compile_fn(fn, state)`: compile `fn(*tensors)` once for repeated calls
  (`tf.function`, `jax.jit`, eager on torch). `state` lists the Keras
  variables `fn` reads or updates (model weights, seed generator state), which
  the JAX version threads through the compiled function explicitly.
- `attack_before_step(state_variables, train_step_args, attack)`: runs
  `attack()` in a `train_step` before Keras's own step differentiates,
  keeping the attack's passes off the gradient tape (JAX: on the values in
  the stateless step's `state`; `state_variables()` returns the variable
  groups behind it, trainable, non-trainable, optimizer and metrics, in that
  order, and is called only there); returns `(x_adv, train_step_args)`.
- `shared_pass_step(forward, weights, optimizer, x, loss_fn, adversarial,
  alpha, frozen=())`: the two-pass mixed-objective training step (see
  `tensorflow.py`), or `None` where a backend has none.
- `trajectory_step(forward, weights, optimizer, start, loss_fn, ascend,
  steps, frozen=())`: FreeLB's training step in `steps` passes, each giving
  a point's weight gradient and input gradient together (see
  `tensorflow.py`); the mean weight gradient is applied.
- `weight_grads(loss_fn, variables, frozen=())`: `d loss_fn() / d
  variables`, constants; `loss_fn` reads the variables (and `frozen`, the
  others it reads) through a `keras.StatelessScope`, so whatever it assigns
  (BatchNorm statistics, metrics) is dropped. Used inside
  `attack_before_step` (adversarial weight perturbation).
- `shift_weights_before_step(state_variables, train_step_args, deltas)` and
  `shift_weights_after_step(state_variables, result, deltas)`: add `deltas`
  to the trainable variables before Keras's step and take them off after
  (JAX: on the values in `state` and in the step's new state), so the step
  takes its gradient at the shifted weights and applies it to the others.
- `stateful_train_step(state_variables, train_step_args, step)`: runs `step(data)`, a
  train step that reads and assigns Keras variables and returns the logs,
  under the backend's `train_step` contract (JAX: on the values in `state`,
  returning `(logs, state)`).
- `unscale_for_distribution(loss)`: a loss as one replica reports it, times
  the number of replicas (TensorFlow's `tf.distribute`), for logging.
- `MAX_UNROLLED_STEPS`: attacks with at most this many steps unroll them
  (JAX: XLA's CPU `while` loop is slower than unrolled short loops).
- `TRAINING_MODE_ATTACKS`: whether attacks may run the model in training
  mode (not under JAX, where BatchNorm updates inside `jax.grad` would leak).
- `is_concrete(x)`: whether `x` holds values (eager), as opposed to a
  symbolic tensor being traced. Data-dependent input checks only run on
  concrete values.
"""

import importlib.util
import os

# The extra that installs each backend's framework, by the module Keras imports.
_EXTRAS = {"tensorflow": "tensorflow", "jax": "jax", "jaxlib": "jax", "torch": "torch"}

try:
    import keras
except ModuleNotFoundError as error:
    _missing = (error.name or "").split(".")[0]
    if _missing not in _EXTRAS:
        raise
    _extra = _EXTRAS[_missing]
    _installed = [
        name
        for name in ("tensorflow", "jax", "torch")
        if importlib.util.find_spec(name) is not None
    ]
    _instead = (
        f"or set KERAS_BACKEND to one you have ({', '.join(_installed)})"
        if _installed
        else "(no Keras backend is installed)"
    )
    _chosen = (
        f"KERAS_BACKEND={os.environ['KERAS_BACKEND']}"
        if os.environ.get("KERAS_BACKEND")
        else f"Keras's backend ({_extra}: its default, or ~/.keras/keras.json)"
    )
    raise ModuleNotFoundError(
        f"{_chosen} needs {_missing}, which is not installed: pip install "
        f"'keras-adv[{_extra}]', {_instead}",
        name=_missing,
    ) from None

_BACKEND = keras.backend.backend()

if _BACKEND == "tensorflow":
    from keras_adv.backend.tensorflow import MAX_UNROLLED_STEPS
    from keras_adv.backend.tensorflow import TRAINING_MODE_ATTACKS
    from keras_adv.backend.tensorflow import attack_before_step
    from keras_adv.backend.tensorflow import compile_fn
    from keras_adv.backend.tensorflow import differentiable_input_grad
    from keras_adv.backend.tensorflow import is_concrete
    from keras_adv.backend.tensorflow import shared_pass_step
    from keras_adv.backend.tensorflow import shift_weights_after_step
    from keras_adv.backend.tensorflow import shift_weights_before_step
    from keras_adv.backend.tensorflow import stateful_train_step
    from keras_adv.backend.tensorflow import trajectory_step
    from keras_adv.backend.tensorflow import unscale_for_distribution
    from keras_adv.backend.tensorflow import value_and_input_grad
    from keras_adv.backend.tensorflow import weight_grads
elif _BACKEND == "jax":
    from keras_adv.backend.jax import MAX_UNROLLED_STEPS
    from keras_adv.backend.jax import TRAINING_MODE_ATTACKS
    from keras_adv.backend.jax import attack_before_step
    from keras_adv.backend.jax import compile_fn
    from keras_adv.backend.jax import differentiable_input_grad
    from keras_adv.backend.jax import is_concrete
    from keras_adv.backend.jax import shared_pass_step
    from keras_adv.backend.jax import shift_weights_after_step
    from keras_adv.backend.jax import shift_weights_before_step
    from keras_adv.backend.jax import stateful_train_step
    from keras_adv.backend.jax import trajectory_step
    from keras_adv.backend.jax import unscale_for_distribution
    from keras_adv.backend.jax import value_and_input_grad
    from keras_adv.backend.jax import weight_grads
elif _BACKEND == "torch":
    from keras_adv.backend.torch import MAX_UNROLLED_STEPS
    from keras_adv.backend.torch import TRAINING_MODE_ATTACKS
    from keras_adv.backend.torch import attack_before_step
    from keras_adv.backend.torch import compile_fn
    from keras_adv.backend.torch import differentiable_input_grad
    from keras_adv.backend.torch import is_concrete
    from keras_adv.backend.torch import shared_pass_step
    from keras_adv.backend.torch import shift_weights_after_step
    from keras_adv.backend.torch import shift_weights_before_step
    from keras_adv.backend.torch import stateful_train_step
    from keras_adv.backend.torch import trajectory_step
    from keras_adv.backend.torch import unscale_for_distribution
    from keras_adv.backend.torch import value_and_input_grad
    from keras_adv.backend.torch import weight_grads
else:
    raise ImportError(
        f"keras-adv does not support the Keras backend '{_BACKEND}'. "
        "Set KERAS_BACKEND to one of 'tensorflow', 'jax' or 'torch'."
    )

__all__ = [
    "MAX_UNROLLED_STEPS",
    "TRAINING_MODE_ATTACKS",
    "attack_before_step",
    "compile_fn",
    "differentiable_input_grad",
    "is_concrete",
    "shared_pass_step",
    "shift_weights_after_step",
    "shift_weights_before_step",
    "stateful_train_step",
    "trajectory_step",
    "unscale_for_distribution",
    "value_and_input_grad",
    "weight_grads",
]
