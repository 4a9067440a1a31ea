"""FreeLB on embeddings: the K-pass step against the general step (2K passes).

Run: `python benchmarks/freelb_speed.py` (any `KERAS_BACKEND`; a few
minutes on 2 cores). The text classifier and data of
`embedding_fgm_speed.py` (4,096 random sequences of 128 token ids, batch
64, Adam), trained with `objective="freelb"` and `PGD(1.0, norm="l2",
steps=K)` on the embedding output: `shared_pass=True` (the default: each
pass gives the point's weight gradient and the next ascent step, K passes
plus the clean forward) against `shared_pass=False` (the ascent's K - 1
passes, then the K passes Keras differentiates). Epochs alternate, one of
each per round, after a warm-up epoch each; medians are reported.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from embedding_fgm_speed import BATCH  # noqa: E402
from embedding_fgm_speed import EXAMPLES  # noqa: E402
from embedding_fgm_speed import LENGTH  # noqa: E402
from embedding_fgm_speed import data  # noqa: E402
from embedding_fgm_speed import keras_adv_epoch  # noqa: E402
from embedding_fgm_speed import race  # noqa: E402


def freelb_epoch(ids, y, steps, shared_pass):
    from keras_adv import PGD

    attack = PGD(1.0, norm="l2", steps=steps, seed=0)
    return keras_adv_epoch(ids, y, shared_pass, attack, objective="freelb")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    import keras

    ids, y = data()
    epochs = {
        "K passes (shared)": freelb_epoch(ids, y, args.steps, True),
        "2K passes (general)": freelb_epoch(ids, y, args.steps, False),
    }
    race(
        epochs,
        args.rounds,
        f"{EXAMPLES} sequences of {LENGTH}, batch {BATCH}, FreeLB K={args.steps} "
        f"L2 eps 1.0 on embeddings; {keras.backend.backend()}",
    )


if __name__ == "__main__":
    main()
