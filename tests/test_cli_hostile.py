"""Hostile input to `keras-adv`, by class: config values, result files and
folders, data that change under a run, messages, interruptions (issue 13).

Each refusal is one line on stderr with exit status 2 that names what the
user typed; nothing a user made is deleted or overwritten by a refusal.
"""

import dataclasses
import json
import os

import numpy as np
import pytest
from conftest import assert_refused
from conftest import run_cli

import keras_adv_cli
from keras_adv.experiments import cli
from keras_adv.experiments import results_store
from keras_adv.experiments.results_store import ResultsFolderError
from keras_adv.experiments.sweep import SweepSettings
from keras_adv.experiments.sweep import run_sweep

TINY = [
    "--train-eps", "0",
    "--attack-eps", "0", "0.1",
    "--attacks", "fgsm",
    "--epochs", "1",
    "--max-test-examples", "32",
    "--no-checks",
]  # fmt: skip


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny sweep in `runs/done`: its folder and results.json text."""
    root = tmp_path_factory.mktemp("cli")
    code, _, err = run_cli("sweep", "--name", "done", "--quiet", *TINY, cwd=root)
    assert code == 0, err
    return root, (root / "runs" / "done" / "results.json").read_text()


# Config values: one declared type per key, refused naming key, file and value.


@pytest.mark.parametrize(
    "line, fragments",
    [
        ('overwrite = "false"', ["overwrite in", "true or false", "'false'"]),
        ('checks = "no"', ["checks in", "true or false", "'no'"]),
        ("quiet = 1", ["quiet in", "true or false"]),
        ('attacks = "fgsm"', ["attacks in", "list", "'fgsm'"]),
        ("train_eps = 0.1", ["train_eps in", "non-empty list", "0.1"]),
        ('attack_eps = ["0.1"]', ["attack_eps in", "finite numbers >= 0"]),
        ("attack_eps = [nan]", ["attack_eps in", "finite numbers >= 0"]),
        ("epochs = 1.5", ["epochs in", "integer >= 1", "1.5"]),
        ("epochs = true", ["epochs in", "integer >= 1"]),
        ("seed = -1", ["seed in", "integer >= 0"]),
        ('objective = "fast"', ["objective in", "'mixed'"]),
        ('attacks = ["cw"]', ["attacks in", "attack name"]),
        ('name = ".."', ["name in", "folder name inside --out"]),
    ],
)
def test_config_values_of_the_wrong_type_are_refused(finished, line, fragments):
    root, before = finished
    config = root / "bad.toml"
    config.write_text(f'name = "done"\n{line}\n' if "name =" not in line else line)
    code, _, err = run_cli(
        "sweep", "--config", str(config), "--epochs", "2", "--quiet", cwd=root
    )
    assert_refused(code, err, "bad.toml", *fragments)
    # the finished sweep (other settings: 2 epochs) is untouched
    assert (root / "runs" / "done" / "results.json").read_text() == before
    assert (root / "runs" / "done" / "models" / "train_eps_0.keras").exists()


def test_quick_in_a_config_file_counts_like_the_flag(tmp_path):
    parser = keras_adv_cli.build_parser()
    config = tmp_path / "q.toml"
    config.write_text("quick = true\nepochs = 2\n")
    options = cli._options(parser.parse_args(["sweep", "--config", str(config)]),
                           set(cli.SWEEP_KEYS) | cli.OTHER_KEYS)  # fmt: skip
    assert options["attacks"] == cli.QUICK["attacks"]  # from --quick
    assert options["epochs"] == 2  # the file beats --quick
    flags = ["sweep", "--config", str(config), "--epochs", "4", "--no-checks"]
    options = cli._options(parser.parse_args(flags),
                           set(cli.SWEEP_KEYS) | cli.OTHER_KEYS)  # fmt: skip
    assert options["epochs"] == 4 and options["checks"] is False  # flags beat both


@pytest.mark.parametrize(
    "flags, fragments",
    [
        (["sweep", "--train-eps", "nan"], ["--train-eps", "finite numbers >= 0"]),
        (["sweep", "--attack-eps", "inf"], ["--attack-eps", "finite"]),
        (["sweep", "--attacks", "pgd0"], ["--attacks", "attack name"]),
        (["train", "--epsilon", "nan", "--output", "m.keras"], ["--epsilon"]),
        (["train", "--epsilon", "-0.1", "--output", "m.keras"], ["--epsilon"]),
        (["train", "--output", "no/such/dir/m.keras"], ["--output", "writable"]),
        (["evaluate", "m.keras", "--epsilons", "-1"], ["--epsilons"]),
        (["sweep", "--name", ".."], ["--name", "folder name inside --out"]),
        (["sweep", "--name", "/tmp/elsewhere"], ["--name", "inside --out"]),
        (["sweep", "--name", "a/../../b"], ["--name", "inside --out"]),
    ],
)
def test_flags_with_bad_values_are_refused_before_any_work(tmp_path, flags, fragments):
    code, _, err = run_cli(*flags, cwd=tmp_path)
    assert_refused(code, err, *fragments)
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written


# Result files and folders.


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("[]", "a JSON list"),
        ('{"settings": {}}', "'training' missing"),
        (
            '{"settings": {}, "training": {}, "cells": [{"attack": "fgsm"}], '
            '"checks": []}',
            "a cell without",
        ),
        ("{not json", "cannot read"),
    ],
)
def test_a_damaged_results_file_is_refused_by_name_and_kept(
    tmp_path, content, fragment
):
    folder = tmp_path / "runs" / "x"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(content)
    code, _, err = run_cli("sweep", "--name", "x", "--quiet", *TINY, cwd=tmp_path)
    assert_refused(code, err, "results.json", fragment, "--overwrite")
    assert (folder / "results.json").read_text() == content
    if content == "[]":  # what the message offers works: --overwrite starts over
        flags = ("sweep", "--name", "x", "--quiet", "--overwrite", *TINY)
        assert run_cli(*flags, cwd=tmp_path)[0] == 0
        assert json.loads((folder / "results.json").read_text())["cells"]


def test_a_failed_start_does_not_block_the_corrected_command(tmp_path):
    code, _, err = run_cli(
        "sweep", "--name", "x", "--dataset", "missing.npz", *TINY, cwd=tmp_path
    )
    assert_refused(code, err, "missing.npz")
    assert not (tmp_path / "runs" / "x" / "results.json").exists()
    # a results.json with settings but no finished work (a crash before the
    # first model) is replaced without --overwrite: nothing is lost
    folder = tmp_path / "runs" / "x"
    results_store.write_json(
        folder / "results.json",
        {"settings": {"epochs": 9}, "training": {}, "cells": [], "checks": []},
    )
    code, _, err = run_cli("sweep", "--name", "x", "--quiet", *TINY, cwd=tmp_path)
    assert code == 0, err


def test_a_unit_another_process_computes_is_left_to_it(tmp_path, monkeypatch):
    settings = SweepSettings(
        train_epsilons=(0.0,), attack_epsilons=(0.0,), attacks=("fgsm",),
        epochs=1, max_test_examples=16, checks=False,
    )  # fmt: skip
    with results_store.claimed(str(tmp_path), "train_eps_0"):
        results = run_sweep(settings, str(tmp_path))
        assert results["missing"] == ["train_eps_0"] and not results["cells"]
        code, out, _ = run_cli("report", str(tmp_path))
        assert code == 0 and "missing: 1 of 1 units not finished (train_eps_0)" in out
        assert not (tmp_path / "models" / "train_eps_0.keras").exists()
        # replacing the sweep would delete what that process is making
        other = dataclasses.replace(settings, epochs=2)
        with pytest.raises(ResultsFolderError, match=f"process {os.getpid()}"):
            run_sweep(other, str(tmp_path), overwrite=True)
        # the folder's own files are locked only while they are rewritten
        monkeypatch.setattr(results_store, "_LOCK_WAIT", 0.2)
        with results_store.locked(str(tmp_path)):
            with pytest.raises(ResultsFolderError, match=f"process {os.getpid()}"):
                run_sweep(settings, str(tmp_path))
    results = run_sweep(settings, str(tmp_path))  # released: computed now
    assert results["missing"] == [] and len(results["cells"]) == 1 + 1


def test_writes_leave_no_temporary_files_and_never_half_a_file(tmp_path):
    path = tmp_path / "r.json"
    results_store.write_json(path, {"a": 1})

    def fail(handle):
        handle.write('{"half": ')
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        results_store.write_atomically(path, fail)
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


# Data identified by content, not by path.


@pytest.mark.slow
def test_a_resumed_sweep_refuses_data_that_changed_at_the_same_path(tmp_path):
    rng = np.random.default_rng(0)

    def save(labels_seed):
        np.savez(
            tmp_path / "data.npz",
            x_train=rng.integers(0, 256, (60, 8, 8)).astype("uint8"),
            y_train=np.random.default_rng(labels_seed).integers(0, 3, 60),
            x_test=rng.integers(0, 256, (20, 8, 8)).astype("uint8"),
            y_test=np.arange(20) % 3,
        )

    save(0)
    flags = ["sweep", "--name", "d", "--dataset", "data.npz", "--quiet", *TINY]
    assert run_cli(*flags, cwd=tmp_path)[0] == 0
    results = tmp_path / "runs" / "d" / "results.json"
    first = json.loads(results.read_text())
    assert len(first["data"]["sha256"]) == 64 and first["data"]["test_examples"] == 20
    assert run_cli(*flags, cwd=tmp_path)[0] == 0  # same data: resumes, no change
    assert json.loads(results.read_text()) == first
    save(1)  # same path, other contents
    code, _, err = run_cli(*flags, cwd=tmp_path)
    assert_refused(code, err, "--dataset data.npz", "differ", "--overwrite")
    assert json.loads(results.read_text()) == first
    assert run_cli(*flags, "--overwrite", cwd=tmp_path)[0] == 0
    redone = json.loads(results.read_text())
    assert redone["data"]["sha256"] != first["data"]["sha256"]


# Messages: name the file, never advise the wrong fix; interruptions are honest.


def test_file_messages_name_the_file_and_the_real_problem(tmp_path):
    (tmp_path / "bad.keras").write_text("half a file")
    code, _, err = run_cli("evaluate", "bad.keras", cwd=tmp_path)
    assert_refused(code, err, "bad.keras", "damaged")
    assert "not found" not in err.lower()
    (tmp_path / "bad.npz").write_bytes(b"\x00" * 64)
    code, _, err = run_cli("sweep", "--dataset", "bad.npz", *TINY, cwd=tmp_path)
    assert_refused(code, err, "bad.npz", "not an .npz archive")
    assert "pickle" not in err


@pytest.mark.parametrize(
    "command, says",
    [
        (["train", "--output", "m.keras", "--epochs", "1"], "no model was saved"),
        (["sweep", "--quiet", *TINY], "finished cells are saved"),
    ],
)
def test_ctrl_c_says_what_was_kept(tmp_path, monkeypatch, command, says):
    from keras_adv.experiments import sweep

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "train_model", interrupted)
    code, _, err = run_cli(*command, cwd=tmp_path)
    assert code == 130 and says in err
    assert not (tmp_path / "m.keras").exists()


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    from keras_adv.experiments import sweep

    def bug(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(sweep, "train_model", bug)
    with pytest.raises(ValueError, match="an internal bug"):
        run_cli("train", "--output", "m.keras", "--epochs", "1", cwd=tmp_path)


def test_temporary_files_of_a_killed_run_are_removed_by_the_next(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "units").mkdir()
    folder_own = tmp_path / ".partial-results.json.x1"
    unit_own = [
        tmp_path / "models" / ".partial-train_eps_0.keras.x2.keras",
        tmp_path / "units" / ".partial-train_eps_0.json.x3",
    ]
    other_unit = tmp_path / "models" / ".partial-train_eps_0.1.keras.x4.keras"
    for path in (folder_own, *unit_own, other_unit):
        path.write_text("half")
    kept = tmp_path / "notes.txt"
    kept.write_text("mine")
    with results_store.locked(str(tmp_path)):  # the folder's own files
        pass
    assert not folder_own.exists() and all(p.exists() for p in unit_own)
    with results_store.claimed(str(tmp_path), "train_eps_0") as owner:
        assert owner is None
    assert not any(p.exists() for p in unit_own)
    # another unit's may be another process's write in progress: kept
    assert other_unit.exists() and kept.exists()


def test_overwrite_with_the_same_settings_and_data_resumes(finished, monkeypatch):
    from keras_adv.experiments import sweep

    root, before = finished
    monkeypatch.setattr(sweep, "train_model", None)  # retraining would fail
    flags = ("sweep", "--name", "done", "--quiet", "--overwrite", *TINY)
    code, _, err = run_cli(*flags, cwd=root)
    assert code == 0, err
    assert (root / "runs" / "done" / "results.json").read_text() == before


@pytest.mark.slow
def test_a_sweep_never_deletes_files_it_did_not_make(tmp_path):
    models = tmp_path / "runs" / "x" / "models"
    models.mkdir(parents=True)
    mine = [models / "mine.keras", models / "notes.txt", models.parent / "data.npz"]
    for path in mine:
        path.write_text("the user's")
    flags = ("sweep", "--name", "x", "--quiet", *TINY)
    assert run_cli(*flags, cwd=tmp_path)[0] == 0  # a new sweep in the folder
    assert run_cli(*flags, "--epochs", "2", "--overwrite", cwd=tmp_path)[0] == 0
    assert all(path.read_text() == "the user's" for path in mine)
    assert sorted(p.name for p in models.iterdir()) == [
        "mine.keras",
        "notes.txt",
        "train_eps_0.keras",
    ]


@pytest.mark.parametrize(
    "content, fragment",
    [("{half", "cannot read"), ('{"cells": [{"attack": "x"}]}', "a cell without")],
)
def test_a_damaged_unit_file_is_refused_by_name_and_kept(tmp_path, content, fragment):
    results_store.write_json(
        tmp_path / "results.json",
        {"settings": {"train_epsilons": [0.0]}, "training": {}, "cells": [],
         "checks": []},
    )  # fmt: skip
    unit = tmp_path / "units" / "train_eps_0.json"
    unit.parent.mkdir()
    unit.write_text(content)
    code, _, err = run_cli("report", str(tmp_path))
    assert_refused(code, err, "units/train_eps_0.json", fragment, "delete it")
    assert unit.read_text() == content
