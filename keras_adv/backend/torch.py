"""PyTorch implementation of the backend seam."""

import torch

# Attacks keep their steps in a loop: unrolling measured no faster here.
MAX_UNROLLED_STEPS = 0


def attack_before_step(model, args, attack):
    """`(attack(), args)`: the variables are read and updated in place."""
    del model
    return attack(), args


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
    value = torch.utils._pytree.tree_map(lambda t: t.detach(), value)
    return value, grad.detach()


def compile_fn(fn, state):
    # Eager: variables are updated in place.
    del state
    return fn


def is_concrete(x):
    del x
    return True


def unscale_for_distribution(value):
    return value  # Keras scales losses for distribution on TensorFlow only


# No two-pass mixed step: the step here is Keras's own (see tensorflow.py).
shared_pass_step = None
