"""PyTorch implementation of the backend seam."""

import torch

# Whether AdversarialModel attacks in `train_step` before Keras's gradient
# computation starts (so it is not recorded), or inside `compute_loss`.
ATTACK_BEFORE_TRAIN_STEP = True

# Whether attacks may run the model in training mode (`attack_training=True`).
TRAINING_MODE_ATTACKS = True


def value_and_input_grad(loss_fn, x):
    # Keras runs `predict` and `test_step` under `no_grad`; attacks need grads.
    with torch.enable_grad():
        x = torch.as_tensor(x).detach().requires_grad_(True)
        loss = loss_fn(x)
        (grad,) = torch.autograd.grad(loss, x)
    return loss.detach(), grad.detach()


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
