"""`AdversarialModel.fit` against hand-written `jax.jit` training steps (JAX backend).

Issue 6's JAX benchmark, on the CPU or a CUDA GPU, in one run. Variants:

- `clean`: `model.fit` vs a hand-written stateless step;
- `fgsm-mixed`: FGSM at `--eps`, loss `(L(x) + L(x_adv)) / 2`;
- `fgsm-rs`: FGSM-RS (uniform start, one step of 1.25 eps), madry objective
  (Wong et al. 2020);
- `pgd7`: PGD-7 (random start, step 2.5 eps / 7), madry objective.

Each `AdversarialModel` variant is timed against the loop a JAX user writes:
`model.stateless_call` in a `jax.jit` step, `jax.grad` with respect to the
input for the attack (steps unrolled), `optimizer.stateless_apply` (the
Keras guide's "training loop from scratch in JAX"). Same model, random data,
batch, optimizer (Adam 1e-3) and dtype policy. Reports images/s (median of
the timed epochs after one warm-up epoch) and the time ratio to the fastest
hand-written step (for FGSM-mixed, a three-pass and a two-pass one). Madry
variants also run with `log_clean=False` (no clean pass for the logs, as in
the hand-written step).

Needs only JAX (CPU or CUDA) and the keras wheel (with namex and optree);
keras_adv is imported from this checkout. Examples:

    # CPU (issue 6 point 5): the reference CNN on digits-shaped data
    python benchmarks/jax_fit_speed.py --model cnn --examples 8192 --batch 128
    # GPU (point 6): ResNet-style, CIFAR-shaped, float32 and mixed_bfloat16
    python benchmarks/jax_fit_speed.py --model resnet --batch 512 \\
        --variants clean fgsm-rs pgd7 --dtypes float32 mixed_bfloat16
    # the same on a CPU, narrow and short: a smoke run of the script
    python benchmarks/jax_fit_speed.py --model resnet --small --examples 512 \\
        --batch 128 --epochs 1 --variants clean fgsm-rs pgd7 \\
        --dtypes float32 mixed_bfloat16
"""

import argparse
import os
import pathlib
import sys
import time

os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from fit_speed_common import VARIANTS  # noqa: E402
from fit_speed_common import compiled_model  # noqa: E402
from fit_speed_common import fastest  # noqa: E402
from fit_speed_common import fit_epoch  # noqa: E402
from fit_speed_common import step_size  # noqa: E402


def cnn(shape, classes):
    """The reference CNN of the sweep (keras_adv.experiments.zoo.small_cnn)."""
    from keras_adv.experiments.zoo import small_cnn

    return small_cnn(shape, classes, seed=0)


def resnet(shape, classes, widths=(64, 128, 256), blocks=2):
    """A ResNet-style CIFAR network: 3 stages of basic residual blocks."""
    layers = keras.layers
    inputs = keras.Input(shape)
    x = layers.Conv2D(widths[0], 3, padding="same", use_bias=False)(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for stage, width in enumerate(widths):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            shortcut = x
            y = layers.Conv2D(width, 3, stride, padding="same", use_bias=False)(x)
            y = layers.ReLU()(layers.BatchNormalization()(y))
            y = layers.Conv2D(width, 3, padding="same", use_bias=False)(y)
            y = layers.BatchNormalization()(y)
            if stride != 1 or shortcut.shape[-1] != width:
                shortcut = layers.Conv2D(width, 1, stride, use_bias=False)(shortcut)
                shortcut = layers.BatchNormalization()(shortcut)
            x = layers.ReLU()(layers.Add()([y, shortcut]))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(classes, dtype="float32")(x)  # float32 logits
    return keras.Model(inputs, outputs)


def keras_runner(build, variant, eps, x, y, batch, log_clean=True):
    """`fit` compiled once; returns a function timing one more epoch."""
    model = compiled_model(build(), variant, eps, log_clean)
    return fit_epoch(model, x, y, batch)


def hand_written_step(model, optimizer, variant, eps, shared=False):
    """The jitted stateless step a JAX user writes for `variant`.

    `shared`: FGSM-mixed in two passes, the clean pass's gradient giving the
    attack's input gradient and the clean weight gradient together.
    """
    kind, steps, random_start, alpha = VARIANTS[variant]
    size = step_size(variant, eps)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def attack(trainable, non_trainable, x, y, key):
        def input_loss(x_adv):
            logits, _ = model.stateless_call(trainable, non_trainable, x_adv)
            return loss_fn(y, logits)

        x_adv = x
        if random_start:
            noise = jax.random.uniform(key, x.shape, x.dtype, -eps, eps)
            x_adv = jnp.clip(x + noise, 0.0, 1.0)
        for _ in range(steps):
            grad = jax.grad(input_loss)(x_adv)
            x_adv = jnp.clip(x_adv + size * jnp.sign(grad), x - eps, x + eps)
            x_adv = jnp.clip(x_adv, 0.0, 1.0)
        return jax.lax.stop_gradient(x_adv)

    def compute_loss(trainable, non_trainable, x, y, x_adv):
        total = 0.0
        for inputs, weight in ((x, 1.0 - alpha), (x_adv, alpha)):
            if weight:
                logits, non_trainable = model.stateless_call(
                    trainable, non_trainable, inputs, training=True
                )
                total = total + weight * loss_fn(y, logits)
        return total, non_trainable

    def loss_at(trainable, non_trainable, inputs, y):
        logits, non_trainable = model.stateless_call(
            trainable, non_trainable, inputs, training=True
        )
        return loss_fn(y, logits), non_trainable

    @jax.jit
    def shared_step(state, x, y, key):
        trainable, non_trainable, opt = state
        (clean, _), (g_clean, g_x) = jax.value_and_grad(
            loss_at, argnums=(0, 2), has_aux=True
        )(trainable, non_trainable, x, y)
        x_adv = jnp.clip(x + eps * jnp.sign(g_x), 0.0, 1.0)
        (adv, non_trainable), g_adv = jax.value_and_grad(loss_at, has_aux=True)(
            trainable, non_trainable, x_adv, y
        )
        pairs = zip(g_clean, g_adv, strict=True)
        grads = [(1 - alpha) * c + alpha * a for c, a in pairs]
        trainable, opt = optimizer.stateless_apply(opt, grads, trainable)
        return (trainable, non_trainable, opt), (1 - alpha) * clean + alpha * adv

    if shared:
        return shared_step

    @jax.jit
    def step(state, x, y, key):
        trainable, non_trainable, opt = state
        x_adv = x if kind is None else attack(trainable, non_trainable, x, y, key)
        (loss, non_trainable), grads = jax.value_and_grad(compute_loss, has_aux=True)(
            trainable, non_trainable, x, y, x_adv
        )
        trainable, opt = optimizer.stateless_apply(opt, grads, trainable)
        return (trainable, non_trainable, opt), loss

    return step


def hand_written_runner(build, variant, eps, x, y, batch, shared=False):
    """The hand-written step, jitted once; returns a function timing one epoch."""
    model = build()
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)
    step = hand_written_step(model, optimizer, variant, eps, shared)
    state = [
        (
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            [v.value for v in optimizer.variables],
        ),
        jax.random.PRNGKey(0),
    ]

    def epoch():
        start = time.perf_counter()
        train_state, key = state
        for i in range(0, len(x) - batch + 1, batch):
            key, sub = jax.random.split(key)
            train_state, loss = step(
                train_state, x[i : i + batch], y[i : i + batch], sub
            )
        loss.block_until_ready()
        state[:] = [train_state, key]
        return time.perf_counter() - start

    return epoch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("cnn", "resnet"), default="resnet")
    parser.add_argument("--examples", type=int, default=10240)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs")
    parser.add_argument("--eps", type=float, default=8 / 255)
    parser.add_argument(
        "--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS)
    )
    parser.add_argument(
        "--dtypes", nargs="+", default=["float32"], help="Keras dtype policies"
    )
    parser.add_argument(
        "--small", action="store_true", help="a narrow ResNet: a CPU smoke run"
    )
    args = parser.parse_args()
    shape = (8, 8, 1) if args.model == "cnn" else (32, 32, 3)
    rng = np.random.default_rng(0)
    n = args.examples - args.examples % args.batch  # whole batches on both sides
    x = rng.uniform(size=(n, *shape)).astype("float32")
    y = rng.integers(0, 10, n).astype("int32")
    device = jax.devices()[0]
    print(f"JAX {jax.__version__} on {device.device_kind} ({device.platform}), "
          f"keras {keras.__version__}, {args.model}, {n} random examples "
          f"{shape}, batch {args.batch}, eps {args.eps:.4f}")  # fmt: skip
    print("dtype | variant | AdversarialModel img/s | hand-written img/s | ratio")
    for dtype in args.dtypes:
        keras.mixed_precision.set_dtype_policy(dtype)

        def build():
            keras.utils.set_random_seed(0)
            if args.model == "cnn":
                return cnn(shape, 10)
            return resnet(
                shape, 10, widths=(8, 16, 32) if args.small else (64, 128, 256)
            )

        for variant in args.variants:
            setup = (build, variant, args.eps, x, y, args.batch)
            ours_runs = {"": keras_runner(*setup)}
            if VARIANTS[variant][3] == 1.0:  # madry: also without the clean logs
                ours_runs[" log_clean=False"] = keras_runner(*setup, log_clean=False)
            hands = {"": hand_written_runner(*setup)}
            if variant == "fgsm-mixed":  # AdversarialModel runs two passes here
                hands = {
                    "3 passes": hands[""],
                    "2 passes": hand_written_runner(*setup, shared=True),
                }
            for run in (*ours_runs.values(), *hands.values()):
                run()  # warm-up epoch: compilation
            ours = {name: [] for name in ours_runs}
            theirs = {name: [] for name in hands}
            for _ in range(args.epochs):  # interleaved, one epoch each
                for times, runs in ((ours, ours_runs), (theirs, hands)):
                    for name, run in runs.items():
                        times[name].append(run())
            best, medians = fastest(theirs)
            their_rate = n / medians[best]
            others = ", ".join(
                f"{name} {n / t:.0f}" for name, t in medians.items() if name != best
            )
            for name, times in ours.items():
                ours_rate = n / np.median(times)
                print(
                    f"{dtype} | {variant}{name} | {ours_rate:.0f} | {their_rate:.0f}"
                    f"{f' ({best}; {others})' if others else ''} | "
                    f"{their_rate / ours_rate:.2f}x"
                )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
