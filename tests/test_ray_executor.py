"""`RayExecutor`'s arguments and its install hint (a Ray sweep: test_sweep.py)."""

import sys

import pytest
from conftest import assert_refused
from conftest import run_cli

from keras_adv.experiments.ray_executor import INSTALL_HINT
from keras_adv.experiments.ray_executor import RayExecutor


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"cpus_per_model": 0}, "cpus_per_model.*> 0"),
        ({"cpus_per_model": float("nan")}, "cpus_per_model"),
        ({"gpus_per_model": -0.5}, "gpus_per_model.*>= 0"),
        ({"gpus_per_model": True}, "gpus_per_model"),
    ],
)
def test_resources_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RayExecutor(**kwargs)


def test_fractional_gpus_are_allowed():
    executor = RayExecutor(cpus_per_model=0.5, gpus_per_model=0.25)
    assert (executor.cpus_per_model, executor.gpus_per_model) == (0.5, 0.25)


def test_without_ray_the_flag_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails
    with pytest.raises(ImportError, match="pip install 'keras-adv\\[ray\\]'"):
        RayExecutor()
    code, _, err = run_cli("sweep", "--executor", "ray", "--quick", cwd=tmp_path)
    assert_refused(code, err, INSTALL_HINT)
    assert not any(tmp_path.iterdir())  # refused before any work


def test_an_address_that_does_not_answer_is_refused_at_once(tmp_path):
    import socket

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("localhost", 0))
        port = closed.getsockname()[1]
    with pytest.raises(ConnectionError, match=f"localhost:{port}.*ray start"):
        RayExecutor(address=f"localhost:{port}")
    code, _, err = run_cli(
        "sweep", "--executor", "ray", "--address", f"ray://localhost:{port}",
        "--quick", cwd=tmp_path,
    )  # fmt: skip
    assert_refused(code, err, "cannot reach", "--address ray://localhost")
    assert not any(tmp_path.iterdir())  # refused before any work
