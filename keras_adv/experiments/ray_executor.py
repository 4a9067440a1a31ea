"""Ray as the engine of a sweep: its units of work as Ray tasks.

Each unit (one trained model and its attack cells, `sweep.run_unit`) becomes
a Ray task with the resources asked for (fractional GPUs allowed), on a
local Ray instance started for the sweep or on an existing cluster. Tasks
write their units' files into the run's folder themselves, exactly as a
serial run does, so the folder needs to be on storage every node sees (on
one machine, any folder). Ray is an optional dependency:
`pip install "keras-adv[ray]"`.
"""

import os
import socket

import keras

from keras_adv import argument_validation as validation
from keras_adv.experiments.progress import cell_line

_PASSED_ON = ("TF_CPP_MIN_LOG_LEVEL",)
INSTALL_HINT = "--executor ray needs Ray: pip install 'keras-adv[ray]'"


class RayExecutor:
    """Runs a sweep's units as Ray tasks; pass it to `run_sweep(executor=...)`.

    Args:
        address: the Ray cluster to join (`"auto"`, `"HOST:6379"`,
            `"ray://HOST:10001"`). A `HOST:PORT` that does not answer is
            refused here (`ConnectionError`, within seconds) rather than
            retried by Ray for minutes. Defaults to `None`: a local Ray
            instance, started for the sweep and shut down after it (or the
            `RAY_ADDRESS` cluster).
        cpus_per_model: CPUs each unit's task reserves. Defaults to 1.
        gpus_per_model: GPUs each unit's task reserves; fractions share a
            GPU between units (0.5: two per GPU). Defaults to 0.
    """

    def __init__(self, address=None, cpus_per_model=1, gpus_per_model=0):
        validation.check_positive(cpus_per_model, "cpus_per_model")
        validation.check_epsilon(gpus_per_model, "gpus_per_model")  # finite, >= 0
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ImportError(INSTALL_HINT) from None
        if address is not None:
            _check_reachable(address)
        self.address = address
        self.cpus_per_model = cpus_per_model
        self.gpus_per_model = gpus_per_model

    def run(self, settings, out_dir, train_epsilons, on_cell=None, progress=None):
        """Computes the units of `train_epsilons` as Ray tasks, all at once
        as resources allow; `on_cell` sees each unit's new cells when its task
        ends, `progress` the tasks' epoch lines as they come (Ray streams the
        tasks' output to this process; `None` silences it). A failed task
        lets the others finish, then its error is raised."""
        import ray

        started_here = not ray.is_initialized()
        if started_here:
            # The tasks use this process's backend (and its log level).
            env = {"KERAS_BACKEND": keras.backend.backend()}
            for name in _PASSED_ON:
                if name in os.environ:
                    env[name] = os.environ[name]
            ray.init(
                address=self.address,
                runtime_env={"env_vars": env},
                include_dashboard=False,
                log_to_driver=progress is not None,
                logging_level="ERROR",
            )
        try:
            task = ray.remote(_unit_task).options(
                num_cpus=self.cpus_per_model, num_gpus=self.gpus_per_model
            )
            pending = {
                task.remote(
                    settings,
                    os.path.abspath(out_dir),
                    eps,
                    os.getcwd(),
                    f"model {place + 1}/{len(train_epsilons)} (train eps {eps:g})"
                    if progress is not None
                    else None,
                ): eps
                for place, eps in enumerate(train_epsilons)
            }
            failures = []
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    del pending[ref]
                    try:
                        _, cells = ray.get(ref)
                    except Exception as error:  # a task's own error, re-raised
                        failures.append(error)  # after the others finish
                        continue
                    for cell in cells:
                        # Said here, when the task ends: Ray's streamed task
                        # output may be cut off when the instance shuts down.
                        if progress is not None:
                            progress(cell_line(cell))
                        if on_cell is not None:
                            on_cell(cell)
            if failures:
                raise failures[0]
        finally:
            if started_here:
                ray.shutdown()


def _check_reachable(address, timeout=5.0):
    """`ConnectionError` if `address` names a host and port that does not
    accept a connection (`"auto"` and other forms are left to Ray)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise ConnectionError(
            f"cannot reach the Ray cluster at --address {address} "
            f"({error.strerror or error}); start it (`ray start --head`) or "
            "leave --address out for a local Ray instance"
        ) from None


def _unit_task(settings, out_dir, train_eps, cwd, label):
    """One unit in a Ray worker, in the driver's working directory when this
    machine has it (relative `--dataset` and `--model` paths)."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    from keras_adv.experiments import sweep

    progress = None if label is None else (lambda line: print(line, flush=True))
    return sweep.run_unit_in_own_process(settings, out_dir, train_eps, progress, label)
