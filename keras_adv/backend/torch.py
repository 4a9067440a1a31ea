"""PyTorch implementation of the backend seam."""

import keras
import torch

from keras_adv.backend.common import attack_before_step  # noqa: F401
from keras_adv.backend.common import mean_gradients
from keras_adv.backend.common import mix_gradients
from keras_adv.backend.common import shift_weights_after_step  # noqa: F401
from keras_adv.backend.common import shift_weights_before_step  # noqa: F401
from keras_adv.backend.common import stateful_train_step  # noqa: F401

# Attacks keep their steps in a loop: unrolling measured no faster here.
MAX_UNROLLED_STEPS = 0


# Whether attacks may run the model in training mode (`attack_training=True`).
TRAINING_MODE_ATTACKS = True


def value_and_input_grad(loss_fn, x, has_aux=False):
    # Keras runs `predict` and `test_step` under `no_grad`; attacks need grads.
    with torch.enable_grad():
        x = torch.as_tensor(x).detach().requires_grad_(True)
        value = loss_fn(x)
        loss = value[0] if has_aux else value
        # A loss that does not depend on x (a gradient-masking model) has a
        # zero gradient rather than an error.
        if loss.requires_grad:
            (grad,) = torch.autograd.grad(
                loss, x, allow_unused=True, materialize_grads=True
            )
        else:
            grad = torch.zeros_like(x)
    value = keras.tree.map_structure(lambda t: t.detach(), value)
    return value, grad.detach()


def differentiable_input_grad(loss_fn, x):
    # create_graph: the gradient keeps its graph back to the weights.
    with torch.enable_grad():
        x = torch.as_tensor(x).detach().requires_grad_(True)
        loss = loss_fn(x)
        if not loss.requires_grad:
            return torch.zeros_like(x)
        (grad,) = torch.autograd.grad(
            loss, x, create_graph=True, allow_unused=True, materialize_grads=True
        )
    return grad


def weight_grads(loss_fn, variables, frozen=()):
    # As on TensorFlow: assignments inside `loss_fn` stay in the scope.
    with torch.enable_grad():
        values = [v.value.detach().requires_grad_(True) for v in variables]
        mapping = list(zip(variables, values, strict=True)) + [
            (v, v.value) for v in frozen
        ]
        with keras.StatelessScope(state_mapping=mapping):
            loss = loss_fn()
        grads = torch.autograd.grad(
            loss, values, allow_unused=True, materialize_grads=True
        )
    return [grad.detach() for grad in grads]


def compile_fn(fn, state):
    # Eager: variables are updated in place.
    del state
    return fn


def is_concrete(x):
    del x
    return True


def unscale_for_distribution(value):
    return value  # Keras scales losses for distribution on TensorFlow only


def shared_pass_step(
    forward, weights, optimizer, x, loss_fn, adversarial, alpha, frozen=()
):
    """The two-pass mixed-objective step; see `tensorflow.py` for the contract.

    As Keras's torch `train_step`, with `torch.autograd.grad` instead of
    `backward()`, so the clean pass yields the input gradient (for the
    attack) and the clean weight gradient together.
    """
    tensors = [v.value for v in weights]
    x = torch.as_tensor(x).detach().requires_grad_(True)
    y_pred = forward(x)
    clean = loss_fn(x, y_pred)
    sources = (tensors if alpha < 1 else []) + [x]
    *clean_grads, input_grad = torch.autograd.grad(
        optimizer.scale_loss(clean), sources, allow_unused=True
    )
    with torch.no_grad():
        x_adv = adversarial(x.detach(), input_grad)
    y_pred_adv = forward(x_adv)
    adv = loss_fn(x_adv, y_pred_adv)
    grads = torch.autograd.grad(optimizer.scale_loss(adv), tensors, allow_unused=True)
    if alpha < 1:
        grads = [
            mix_gradients(c, a, alpha) for c, a in zip(clean_grads, grads, strict=True)
        ]
    with torch.no_grad():
        optimizer.apply(list(grads), weights)
    return y_pred.detach(), y_pred_adv.detach(), clean.detach(), adv.detach()


def trajectory_step(
    forward, weights, optimizer, start, loss_fn, ascend, steps, frozen=()
):
    """FreeLB's step in `steps` passes; see `tensorflow.py` for the contract.

    One `torch.autograd.grad` per point gives its input gradient and weight
    gradient together.
    """
    del frozen
    tensors = [v.value for v in weights]
    point, passes, losses = torch.as_tensor(start).detach(), [], []
    for t in range(steps):  # K is small: a Python loop, as eager torch runs
        point = point.detach().requires_grad_(True)
        y_pred = forward(point)
        loss = loss_fn(point, y_pred)
        *grads, input_grad = torch.autograd.grad(
            optimizer.scale_loss(loss), tensors + [point], allow_unused=True
        )
        passes.append(grads)
        losses.append(loss.detach())
        if t + 1 < steps:
            with torch.no_grad():
                point = ascend(point.detach(), input_grad)
    grads = mean_gradients(passes)
    with torch.no_grad():
        optimizer.apply(list(grads), weights)
    return y_pred.detach(), sum(losses) / steps
