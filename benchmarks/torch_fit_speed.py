"""`AdversarialModel.fit` against a hand-written eager PyTorch loop (torch backend).

Issue 6's PyTorch benchmark. Variants as in `jax_fit_speed.py`: `clean`,
`fgsm-mixed` (FGSM at `--eps`, `(L(x) + L(x_adv)) / 2`) and `pgd7` (PGD-7
with a random start, madry objective). The hand-written side is the loop a
PyTorch user writes around the same Keras model (a `torch.nn.Module` on this
backend): `torch.autograd.grad` for the attack, `torch.optim.Adam` over
`model.parameters()`, `loss.backward()`. Same random data, batch and
learning rate; median seconds per epoch over interleaved epochs, after one
warm-up epoch each. `AdversarialModel` is timed two ways: one `fit(epochs=1)`
call per epoch (set-up costs of `fit` included each time), and epochs
measured inside one `fit` by a callback that runs a hand-written epoch
between them.

By default `AdversarialModel` logs the clean loss (and compiled metrics) even
when the objective (madry) does not train on clean inputs, so its madry step
has a clean forward pass the minimal hand-written loop skips. Madry variants
are therefore timed twice: the default against a hand-written loop that
computes those logs too (a clean forward under `no_grad`, its loss and
accuracy), and `log_clean=False` against the minimal loop. `--size 28` runs
28x28 inputs instead of 8x8 (the per-call overhead of eager Keras then weighs
less).

    python benchmarks/torch_fit_speed.py --examples 8192 --batch 128
"""

import argparse
import os
import pathlib
import sys
import time

os.environ["KERAS_BACKEND"] = "torch"
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from fit_speed_common import VARIANTS as ALL_VARIANTS  # noqa: E402
from fit_speed_common import compiled_model  # noqa: E402
from fit_speed_common import fastest  # noqa: E402
from fit_speed_common import fit_epoch  # noqa: E402
from fit_speed_common import step_size  # noqa: E402

from keras_adv.experiments.zoo import small_cnn  # noqa: E402

VARIANTS = {name: ALL_VARIANTS[name] for name in ("clean", "fgsm-mixed", "pgd7")}


def build(shape):
    keras.utils.set_random_seed(0)
    return small_cnn(shape, 10, seed=0)


def keras_runner(variant, eps, x, y, batch, log_clean=True):
    model = compiled_model(build(x.shape[1:]), variant, eps, log_clean)
    epoch = fit_epoch(model, x, y, batch)

    def epochs_within_one_fit(count, between):
        timer = Interleaved(between)
        model.fit(
            x,
            y,
            batch_size=batch,
            epochs=count,
            verbose=0,
            shuffle=False,
            callbacks=[timer],
        )
        return timer.ours

    epoch.within_one_fit = epochs_within_one_fit
    return epoch


class Interleaved(keras.callbacks.Callback):
    """Times each epoch of a `fit`, and runs `between()` after each."""

    def __init__(self, between):
        super().__init__()
        self.between, self.ours = between, []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.ours.append(time.perf_counter() - self.start)
        self.between()


def hand_written_runner(variant, eps, x, y, batch, log_clean=False, shared=False):
    """One epoch of the hand-written loop; `shared`: FGSM-mixed in two passes."""
    kind, steps, random_start, alpha = VARIANTS[variant]
    size = step_size(variant, eps)
    model = build(x.shape[1:])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_all, y_all = torch.as_tensor(x), torch.as_tensor(y, dtype=torch.long)

    def attack(inputs, labels):
        x_adv = inputs
        if random_start:
            noise = torch.empty_like(inputs).uniform_(-eps, eps)
            x_adv = (inputs + noise).clamp(0.0, 1.0)
        for _ in range(steps):
            x_adv = x_adv.detach().requires_grad_(True)
            loss = F.cross_entropy(model(x_adv, training=False), labels)
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = x_adv + size * grad.sign()
            x_adv = torch.min(torch.max(x_adv, inputs - eps), inputs + eps)
            x_adv = x_adv.clamp(0.0, 1.0)
        return x_adv.detach()

    def shared_step(inputs, labels):
        # The clean backward pass gives the attack's input gradient too.
        optimizer.zero_grad()
        inputs = inputs.detach().requires_grad_(True)
        clean = F.cross_entropy(model(inputs, training=True), labels)
        ((1.0 - alpha) * clean).backward()
        x_adv = (inputs.detach() + eps * inputs.grad.sign()).clamp(0.0, 1.0)
        adv = F.cross_entropy(model(x_adv, training=True), labels)
        (alpha * adv).backward()
        optimizer.step()

    def step(inputs, labels):
        if shared:
            return shared_step(inputs, labels)
        x_adv = attack(inputs, labels) if kind is not None else inputs
        if log_clean and alpha == 1.0:  # what fit logs: clean loss, accuracy
            with torch.no_grad():
                logits = model(inputs, training=True)
                F.cross_entropy(logits, labels).item()
                (logits.argmax(-1) == labels).float().mean().item()
        optimizer.zero_grad()
        loss = 0.0
        for batch_x, weight in ((inputs, 1.0 - alpha), (x_adv, alpha)):
            if weight:
                logits = model(batch_x, training=True)
                loss = loss + weight * F.cross_entropy(logits, labels)
        loss.backward()
        optimizer.step()

    def epoch():
        start = time.perf_counter()
        for i in range(0, len(x_all), batch):
            step(x_all[i : i + batch], y_all[i : i + batch])
        return time.perf_counter() - start

    return epoch


def rows(variants, setup):
    """`(label, AdversarialModel runner, {name: hand-written runner})` to time."""
    for variant in variants:
        alpha = VARIANTS[variant][3]
        if variant == "fgsm-mixed":  # AdversarialModel runs two passes here too
            hands = {
                "3 passes": hand_written_runner(*setup(variant)),
                "2 passes": hand_written_runner(*setup(variant), shared=True),
            }
            yield variant, keras_runner(*setup(variant)), hands
        elif alpha == 1.0:  # madry: with and without the clean logs
            with_logs = hand_written_runner(*setup(variant), log_clean=True)
            yield (
                f"{variant} (clean logs)",
                keras_runner(*setup(variant)),
                {"clean logs": with_logs},
            )
            yield (
                f"{variant} log_clean=False",
                keras_runner(*setup(variant), log_clean=False),
                {"": hand_written_runner(*setup(variant))},
            )
        else:
            yield (
                variant,
                keras_runner(*setup(variant)),
                {"": hand_written_runner(*setup(variant))},
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=8192)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs")
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--size", type=int, default=8, help="image side")
    parser.add_argument(
        "--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS)
    )
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shape = (args.examples, args.size, args.size, 1)
    x = rng.uniform(size=shape).astype("float32")
    y = rng.integers(0, 10, args.examples).astype("int64")
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), keras "
        f"{keras.__version__}, reference CNN, {args.examples} random "
        f"{args.size}x{args.size}x1 examples, batch {args.batch}, eps {args.eps}"
    )
    print(
        "variant | AdversarialModel s/epoch: one fit() per epoch, epochs within "
        "one fit() | hand-written s/epoch (the fastest) | ratios"
    )
    for label, ours_run, hands in rows(
        args.variants, lambda variant: (variant, args.eps, x, y, args.batch)
    ):
        for run in (ours_run, *hands.values()):
            run()  # warm-up
        ours, theirs = [], {name: [] for name in hands}
        for _ in range(args.epochs):
            ours.append(ours_run())
            for name, run in hands.items():
                theirs[name].append(run())

        def run_hands(hands=hands, theirs=theirs):
            for name, run in hands.items():
                theirs[name].append(run())

        # A fit() call has set-up costs a user pays once, not per epoch.
        within = ours_run.within_one_fit(args.epochs + 1, run_hands)
        best, medians = fastest(theirs)
        ours_s, within_s = np.median(ours), np.median(within[1:])
        theirs_s = medians[best]
        others = ", ".join(f"{n} {t:.2f}" for n, t in medians.items() if n != best)
        print(
            f"{label} | {ours_s:.2f}, {within_s:.2f} | {theirs_s:.2f}"
            f"{f' ({best}; {others})' if others else ''} | "
            f"{ours_s / theirs_s:.2f}x, {within_s / theirs_s:.2f}x"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
