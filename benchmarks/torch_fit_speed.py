"""`AdversarialModel.fit` against a hand-written eager PyTorch loop (torch backend).

Issue 6's PyTorch benchmark. Variants as in `jax_fit_speed.py`: `clean`,
`fgsm-mixed` (FGSM at `--eps`, `(L(x) + L(x_adv)) / 2`) and `pgd7` (PGD-7
with a random start, madry objective). The hand-written side is the loop a
PyTorch user writes around the same Keras model (a `torch.nn.Module` on this
backend): `torch.autograd.grad` for the attack, `torch.optim.Adam` over
`model.parameters()`, `loss.backward()`. Same random data, batch and
learning rate; median seconds per epoch over interleaved epochs, after one
warm-up epoch each.

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

from keras_adv import FGSM  # noqa: E402
from keras_adv import PGD  # noqa: E402
from keras_adv import AdversarialModel  # noqa: E402
from keras_adv.zoo import small_cnn  # noqa: E402

# variant -> (attack kind, steps, random start, weight of the adversarial loss)
VARIANTS = {
    "clean": (None, 0, False, 0.0),
    "fgsm-mixed": ("fgsm", 1, False, 0.5),
    "pgd7": ("pgd", 7, True, 1.0),
}


def build(shape):
    keras.utils.set_random_seed(0)
    return small_cnn(shape, 10, seed=0)


def keras_runner(variant, eps, x, y, batch):
    kind, steps, random_start, alpha = VARIANTS[variant]
    model = build(x.shape[1:])
    if kind == "fgsm":
        attack = FGSM(eps, seed=0)
    elif kind == "pgd":
        attack = PGD(eps, steps=steps, seed=0)
    if kind is not None:
        objective = "madry" if alpha == 1.0 else "mixed"
        model = AdversarialModel(model=model, attack=attack, objective=objective)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )

    def epoch():
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        return time.perf_counter() - start

    return epoch


def hand_written_runner(variant, eps, x, y, batch):
    kind, steps, random_start, alpha = VARIANTS[variant]
    step_size = eps if kind == "fgsm" else 2.5 * eps / max(steps, 1)
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
            x_adv = x_adv + step_size * grad.sign()
            x_adv = torch.min(torch.max(x_adv, inputs - eps), inputs + eps)
            x_adv = x_adv.clamp(0.0, 1.0)
        return x_adv.detach()

    def step(inputs, labels):
        x_adv = attack(inputs, labels) if kind is not None else inputs
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=8192)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs")
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument(
        "--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS)
    )
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(args.examples, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 10, args.examples).astype("int64")
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), keras "
        f"{keras.__version__}, reference CNN, {args.examples} random 8x8x1 "
        f"examples, batch {args.batch}, eps {args.eps}"
    )
    print("variant | AdversarialModel s/epoch | hand-written s/epoch | ratio")
    for variant in args.variants:
        setup = (variant, args.eps, x, y, args.batch)
        runners = (keras_runner(*setup), hand_written_runner(*setup))
        for run in runners:
            run()  # warm-up
        ours, theirs = [], []
        for _ in range(args.epochs):
            ours.append(runners[0]())
            theirs.append(runners[1]())
        ours_s, theirs_s = np.median(ours), np.median(theirs)
        print(f"{variant} | {ours_s:.2f} | {theirs_s:.2f} | {ours_s / theirs_s:.2f}x")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
