"""Threat-model math: per-example norms, steepest-ascent steps, projections.

Pure `keras.ops` functions, one line of math each. Tensors are batches: the
first axis indexes examples, every other axis is reduced. Attacks call these
with `norm` and never branch on the norm themselves.
"""

from keras import ops
from keras import random

NORMS = ("linf", "l2")

# Guards divisions by a zero norm (a zero gradient or a zero perturbation).
_TINY = 1e-12


def check_norm(norm):
    """Returns `norm` if it names a supported norm, else raises `ValueError`."""
    if norm not in NORMS:
        raise ValueError(
            f"Argument `norm` must be one of {NORMS}. Received: norm={norm!r}"
        )
    return norm


def _reduce_axes(x):
    return tuple(range(1, len(x.shape)))


def _per_example(values, x):
    """Reshapes per-example scalars `(batch,)` to broadcast against `x`."""
    return ops.reshape(values, (-1,) + (1,) * (len(x.shape) - 1))


def lp_norm(x, norm):
    """Per-example norm: `max_i |x_i|` (linf) or `sqrt(sum_i x_i^2)` (l2)."""
    check_norm(norm)
    x = ops.convert_to_tensor(x)
    if norm == "linf":
        return ops.max(ops.abs(x), axis=_reduce_axes(x))
    return ops.sqrt(ops.sum(ops.square(x), axis=_reduce_axes(x)))


def normalize_grad(grad, norm):
    """Steepest-ascent direction of unit norm: `sign(g)` (linf), `g/||g||_2` (l2)."""
    check_norm(norm)
    grad = ops.convert_to_tensor(grad)
    if norm == "linf":
        return ops.sign(grad)
    length = ops.maximum(lp_norm(grad, "l2"), _TINY)
    return grad / _per_example(length, grad)


def project_to_ball(delta, epsilon, norm):
    """Nearest point of the ball: `clip(d, -eps, eps)` | `d*min(1, eps/||d||)`."""
    check_norm(norm)
    delta = ops.convert_to_tensor(delta)
    if norm == "linf":
        return ops.clip(delta, -epsilon, epsilon)
    length = ops.maximum(lp_norm(delta, "l2"), _TINY)
    factor = ops.minimum(1.0, epsilon / length)
    return delta * ops.cast(_per_example(factor, delta), delta.dtype)


def random_in_ball(shape, epsilon, norm, seed, dtype="float32"):
    """Uniform draw from the ball: `U[-eps, eps]^d` | `eps*u^(1/d)*z/||z||`."""
    check_norm(norm)
    if norm == "linf":
        # Drawn on [-1, 1] and scaled, so `epsilon` may be a tensor.
        return epsilon * random.uniform(shape, -1.0, 1.0, dtype=dtype, seed=seed)
    direction = normalize_grad(random.normal(shape, dtype=dtype, seed=seed), "l2")
    dims = 1
    for size in shape[1:]:
        dims *= size
    radius = random.uniform((shape[0],), dtype=dtype, seed=seed) ** (1.0 / dims)
    return direction * _per_example(epsilon * radius, direction)
