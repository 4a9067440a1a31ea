"""One process of `test_distributed.py`: adversarial training under Keras's
own distribution, and the library's other entry points beside it.

    python tests/distributed_worker.py RANK PROCESSES ADDRESSES OUT.json

With PROCESSES > 1 the process joins the others: on JAX through
`keras.distribution.initialize` (ADDRESSES: the coordinator's) and
`DataParallel` over every process's devices, feeding its own share of each
global batch; on TensorFlow through `MultiWorkerMirroredStrategy` (ADDRESSES:
every worker's, comma-separated, as `TF_CONFIG` lists them), feeding the
global batches to be sharded by TensorFlow. With 1 it trains alone. It
writes what the test compares: the weights after PGD training and after the
two-pass FGSM step, the logged metrics, `AdversarialMonitor`'s values,
`Attack.generate`'s output and `evaluate_robustness`'s table.
"""

import json
import os
import sys

GLOBAL_BATCH = 64
EXAMPLES = 256


def main(rank, processes, addresses, out):
    import contextlib

    import keras
    import numpy as np

    keras.config.disable_traceback_filtering()  # whole tracebacks in the log
    strategy = None
    multi_worker = processes > 1 and keras.backend.backend() == "tensorflow"
    if multi_worker:
        os.environ["TF_CONFIG"] = json.dumps(
            {
                "cluster": {"worker": addresses.split(",")},
                "task": {"type": "worker", "index": rank},
            }
        )
        import tensorflow as tf

        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif processes > 1:
        import jax

        # Cross-process collectives between CPU processes.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        keras.distribution.initialize(addresses, processes, rank)
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(
                devices=keras.distribution.list_devices(),
                auto_shard_dataset=False,  # each process feeds its share
            )
        )

    from keras_adv import FGSM
    from keras_adv import PGD
    from keras_adv import AdversarialModel
    from keras_adv import evaluate_robustness
    from keras_adv.callbacks import AdversarialMonitor
    from keras_adv.experiments.data import load_digits
    from keras_adv.training import two_pass_step

    (x, y), (x_test, y_test) = load_digits(seed=0)
    x, y = x.reshape(-1, 64)[:EXAMPLES], y[:EXAMPLES]
    x_test, y_test = x_test.reshape(-1, 64)[:64], y_test[:64]
    # This process's share of every global batch: rows [rank * B/P, (rank + 1)
    # * B/P) of each, so the processes together see the single process's
    # batches.
    share = GLOBAL_BATCH // processes
    mine = np.concatenate(
        [
            np.arange(start + rank * share, start + (rank + 1) * share)
            for start in range(0, EXAMPLES, GLOBAL_BATCH)
        ]
    )
    x_mine, y_mine = x[mine], y[mine]
    if multi_worker:  # TensorFlow shards the global batches itself
        x_mine, y_mine, share = x, y, GLOBAL_BATCH

    def model(attack, **kwargs):
        keras.utils.set_random_seed(0)
        with strategy.scope() if strategy else contextlib.nullcontext():
            inputs = keras.Input((64,))
            hidden = keras.layers.Dense(32, activation="relu")(inputs)
            net = AdversarialModel(
                inputs, keras.layers.Dense(10)(hidden), attack=attack, **kwargs
            )
            net.compile(
                keras.optimizers.SGD(0.1),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"],
            )
        return net

    record = {}
    monitor = AdversarialMonitor(
        (x_test, y_test), attack=PGD(epsilon=0.1, steps=2, random_start=False)
    )
    pgd = model(PGD(epsilon=0.1, steps=3, random_start=False))
    history = pgd.fit(
        x_mine, y_mine, batch_size=share, epochs=2, shuffle=False, verbose=0,
        callbacks=[monitor],
    )  # fmt: skip
    record["pgd_weights"] = [w.tolist() for w in pgd.get_weights()]
    record["pgd_history"] = {
        k: [float(v) for v in h] for k, h in history.history.items()
    }

    fgsm = model(FGSM(epsilon=0.1), objective="mixed")
    record["two_pass"] = two_pass_step.shared_pass_weights(fgsm, x_mine) is not None
    history = fgsm.fit(
        x_mine, y_mine, batch_size=share, epochs=2, shuffle=False, verbose=0
    )
    record["fgsm_weights"] = [w.tolist() for w in fgsm.get_weights()]
    record["fgsm_history"] = {
        k: [float(v) for v in h] for k, h in history.history.items()
    }

    attack = PGD(epsilon=0.1, steps=3, random_start=False)
    x_adv = attack.generate(pgd, x_test, y_test, batch_size=32)
    record["generated"] = np.asarray(x_adv).tolist()
    result = evaluate_robustness(
        pgd, (x_test, y_test), epsilons=[0.0, 0.1], attacks=["fgsm", "pgd3"],
        checks=False,
    )  # fmt: skip
    record["robust_accuracy"] = result.robust_accuracy
    with open(out, "w") as handle:
        json.dump(record, handle)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    rank, processes, addresses, out = sys.argv[1:]
    main(int(rank), int(processes), addresses, out)
