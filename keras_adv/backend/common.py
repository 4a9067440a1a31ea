"""Helpers shared by the backend implementations (no framework import)."""


def attack_before_step(state_variables, args, attack):
    """`(attack(), args)` where variables are read and updated in place
    (TensorFlow, PyTorch); JAX threads them through `state` instead."""
    del state_variables
    return attack(), args


def stateful_train_step(state_variables, args, step):
    """`step(data)` where variables are read and assigned in place
    (TensorFlow, PyTorch); JAX runs it on the values in `state` instead."""
    del state_variables
    return step(args[-1])


def shift_weights_before_step(state_variables, args, deltas):
    """Adds `deltas` to the trainable variables (in place here; JAX: to the
    values in `state`); returns the step's arguments."""
    for variable, delta in zip(state_variables()[0], deltas, strict=True):
        variable.assign_add(delta)
    return args


def shift_weights_after_step(state_variables, result, deltas):
    """Subtracts `deltas` from the trainable variables after Keras's step;
    returns the step's result (JAX: with the values in its `state` shifted)."""
    for variable, delta in zip(state_variables()[0], deltas, strict=True):
        variable.assign_sub(delta)
    return result


def mix_gradients(clean, adv, alpha):
    """`(1 - alpha) * clean + alpha * adv` for one weight; `None` where unused."""
    if clean is None or adv is None:
        return adv if clean is None else clean * (1.0 - alpha)
    return (1.0 - alpha) * clean + alpha * adv


def mean_gradients(passes):
    """The mean of several passes' gradient lists, weight by weight; `None`
    where no pass used a weight (JAX and PyTorch; TensorFlow keeps an
    embedding's gradient sparse, see its `trajectory_step`)."""
    means = []
    for grads in zip(*passes, strict=True):
        used = [g for g in grads if g is not None]
        means.append(sum(used) / len(grads) if used else None)
    return means
