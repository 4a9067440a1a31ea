"""Threat-model math: per-example norms, steepest-ascent steps, projections.

Pure `keras.ops` functions, one line of math each. Tensors are batches: the
first axis indexes examples, every other axis is reduced. Attacks call these
with `norm` and never branch on the norm themselves.
"""

from keras import ops
from keras import random

NORMS = ("linf", "l2", "l1")

# L1's steepest-ascent step moves the coordinates whose gradient is at or
# above this percentile of the example's |gradient| (Tramer & Boneh 2019's
# SLIDE, q = 99): a dense step of L1 norm eps would move every coordinate by
# eps / d, which is no attack at all.
L1_PERCENTILE = 99.0

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


def flatten(x):
    """`x` as `(batch, features)`, with the number of features."""
    size = 1
    for dim in x.shape[1:]:
        size *= dim
    return ops.reshape(x, (-1, size)), size


def lp_norm(x, norm):
    """Per-example norm: `max |x_i|` (linf), `sqrt(sum x_i^2)` (l2), `sum |x_i|`."""
    check_norm(norm)
    x = ops.convert_to_tensor(x)
    if norm == "linf":
        return ops.max(ops.abs(x), axis=_reduce_axes(x))
    if norm == "l1":
        return ops.sum(ops.abs(x), axis=_reduce_axes(x))
    return ops.sqrt(ops.sum(ops.square(x), axis=_reduce_axes(x)))


def normalize_grad(grad, norm):
    """Steepest-ascent direction of unit norm: `sign(g)` (linf), `g/||g||_2` (l2).

    For l1: `sign(g)` on the coordinates whose `|g|` reaches the example's
    `L1_PERCENTILE`-th percentile (at least one), divided by their count, so
    the direction's L1 norm is 1 (sparse, as L1 ascent must be).
    """
    check_norm(norm)
    grad = ops.convert_to_tensor(grad)
    if norm == "linf":
        return ops.sign(grad)
    if norm == "l1":
        _, size = flatten(grad)
        keep = max(1, int(round(size * (1.0 - L1_PERCENTILE / 100.0))))
        return sign_of_largest(grad, size - keep)
    length = ops.maximum(lp_norm(grad, "l2"), _TINY)
    return grad / _per_example(length, grad)


def sign_of_largest(grad, rank):
    """`sign(g)` on the coordinates whose `|g|` reaches the value at `rank` of
    the example's sorted `|g|` (ascending), divided by how many of them have
    a nonzero gradient: a sparse direction of L1 norm 1 (0 for a zero `g`).

    `rank` is an int, or an int tensor `(batch,)` (one rank per example).
    """
    flat, _ = flatten(ops.abs(grad))
    rank = ops.reshape(ops.convert_to_tensor(rank, "int32"), (-1, 1))
    rank = ops.broadcast_to(rank, (ops.shape(flat)[0], 1))
    threshold = ops.take_along_axis(ops.sort(flat, axis=-1), rank, axis=-1)
    chosen = ops.cast(flat >= threshold, grad.dtype)
    chosen = chosen * ops.cast(flat > 0, grad.dtype)  # a zero gradient: no step
    count = ops.maximum(ops.sum(chosen, axis=-1, keepdims=True), 1.0)
    return ops.sign(grad) * ops.reshape(chosen / count, ops.shape(grad))


def project_to_ball(delta, epsilon, norm):
    """Nearest point of the ball: `clip(d, -eps, eps)` | `d*min(1, eps/||d||)`.

    For l1, the Euclidean projection onto the L1 ball by sorting (Duchi et
    al. 2008, "Efficient projections onto the l1-ball"): `sign(d) *
    max(|d| - theta, 0)` with the one `theta` that makes the L1 norm `eps`.
    """
    check_norm(norm)
    delta = ops.convert_to_tensor(delta)
    if norm == "linf":
        return ops.clip(delta, -epsilon, epsilon)
    if norm == "l1":
        return _project_l1(delta, epsilon)
    length = ops.maximum(lp_norm(delta, "l2"), _TINY)
    factor = ops.minimum(1.0, epsilon / length)
    return delta * ops.cast(_per_example(factor, delta), delta.dtype)


def _project_l1(delta, epsilon):
    flat, size = flatten(delta)
    magnitude = ops.abs(flat)
    descending = ops.flip(ops.sort(magnitude, axis=-1), axis=-1)
    cumulative = ops.cumsum(descending, axis=-1)
    ranks = ops.cast(ops.arange(1, size + 1), flat.dtype)
    above = descending - (cumulative - epsilon) / ranks > 0  # a prefix: True..False
    rho = ops.maximum(ops.sum(ops.cast(above, "int32"), axis=-1, keepdims=True), 1)
    theta = (ops.take_along_axis(cumulative, rho - 1, axis=-1) - epsilon) / ops.cast(
        rho, flat.dtype
    )
    shrunk = ops.sign(flat) * ops.maximum(magnitude - theta, 0.0)
    inside = ops.sum(magnitude, axis=-1, keepdims=True) <= epsilon
    return ops.reshape(ops.where(inside, flat, shrunk), ops.shape(delta))


def project_l1_box(delta, x, epsilon, low, high):
    """Nearest `d` to `delta` with `||d||_1 <= eps` and `low <= x + d <= high`.

    The exact Euclidean projection onto the L1 ball intersected with the box
    (Croce & Hein 2021, "Mind the box"), not the ball's projection clipped
    afterwards, which leaves part of the budget unused. Per coordinate,
    `d_i = sign(delta_i) * min(max(|delta_i| - t, 0), room_i)`, `room_i` the
    distance from `x_i` to the box edge on `delta_i`'s side, with `t = 0` if
    that is within the budget, else the `t` where the L1 norm is `eps`: the
    norm is piecewise linear in `t`, bending at `|delta_i| - room_i` (the
    coordinate leaves the edge) and `|delta_i|` (it reaches 0), so `t` is
    found between two of these sorted breakpoints.
    """
    delta = ops.convert_to_tensor(delta)
    flat, size = flatten(delta)
    origin, _ = flatten(ops.convert_to_tensor(x))
    magnitude = ops.abs(flat)
    room = ops.maximum(ops.where(flat >= 0, high - origin, origin - low), 0.0)
    capped = ops.minimum(magnitude, room)
    total = ops.sum(capped, axis=-1, keepdims=True)
    points = ops.concatenate([ops.maximum(magnitude - room, 0.0), magnitude], axis=-1)
    bends = ops.concatenate(
        [-ops.ones_like(magnitude), ops.ones_like(magnitude)], axis=-1
    )
    order = ops.argsort(points, axis=-1)
    points = ops.take_along_axis(points, order, axis=-1)
    slope = ops.cumsum(ops.take_along_axis(bends, order, axis=-1), axis=-1)
    # the norm at each breakpoint: total plus the slope times each gap before
    gains = slope[:, :-1] * (points[:, 1:] - points[:, :-1])
    norm_at = total + ops.concatenate(
        [ops.zeros_like(total), ops.cumsum(gains, axis=-1)], axis=-1
    )
    within = norm_at <= epsilon  # False..True: the norm only falls
    first = ops.argmax(ops.cast(within, "int32"), axis=-1)[:, None]
    before = ops.maximum(first - 1, 0)
    t = ops.take_along_axis(points, before, -1) + (
        ops.take_along_axis(norm_at, before, -1) - epsilon
    ) / ops.maximum(-ops.take_along_axis(slope, before, -1), 1.0)
    shrunk = ops.minimum(ops.maximum(magnitude - t, 0.0), room)
    projected = ops.sign(flat) * ops.where(total <= epsilon, capped, shrunk)
    return ops.reshape(projected, ops.shape(delta))


def random_in_ball(shape, epsilon, norm, seed, dtype="float32"):
    """Uniform draw from the ball: `U[-eps, eps]^d` | `eps*u^(1/d)*z/||z||`.

    For l1, `z` has independent Laplace coordinates (uniform on the L1
    sphere once divided by its L1 norm).
    """
    check_norm(norm)
    if norm == "linf":
        # Drawn on [-1, 1] and scaled, so `epsilon` may be a tensor.
        return epsilon * random.uniform(shape, -1.0, 1.0, dtype=dtype, seed=seed)
    if norm == "l1":
        uniform = random.uniform(shape, -1.0, 1.0, dtype=dtype, seed=seed)
        laplace = -ops.sign(uniform) * ops.log(
            ops.maximum(1.0 - ops.abs(uniform), _TINY)
        )
        length = ops.maximum(lp_norm(laplace, "l1"), _TINY)
        direction = laplace / _per_example(length, laplace)
    else:
        direction = normalize_grad(random.normal(shape, dtype=dtype, seed=seed), "l2")
    dims = 1
    for size in shape[1:]:
        dims *= size
    radius = random.uniform((shape[0],), dtype=dtype, seed=seed) ** (1.0 / dims)
    return direction * _per_example(epsilon * radius, direction)
