"""A run's folder: one result file per unit of work, merged into `results.json`.

A sweep's units (one trained model each, with its attack cells) are written
by whichever process runs them, each to `units/<unit>.json`, so parallel
writers (shards, Ray tasks) never collide and a lost job loses only its own
unit; `merge` gathers the finished units into `results.json`, whose header
(settings, data, model, versions) the first run wrote.

Nothing a user made is lost or mixed: every write replaces the file whole
(a reader sees the old or the new one, never half), temporary files have
unique names, locks keep two processes out of one unit (and out of the
folder's own files while they are rewritten), released by the operating
system even after `kill -9`; a damaged or foreign result file is refused by
name instead of being overwritten.
"""

import contextlib
import fcntl
import json
import os
import tempfile
import time
import zipfile

RESULTS = "results.json"
UNITS = "units"  # units/<unit>.json: one unit of work's results
_LOCK = ".keras-adv.lock"
_LOCK_WAIT = 120.0  # seconds a merge waits for another process's merge
_PARTIAL = ".partial-"  # temporary files start so; stale ones are removed
# Keys a results file must hold, and what each cell must hold.
_RESULTS_KEYS = {"settings": dict, "training": dict, "cells": list, "checks": list}
_CELL_KEYS = ("train_epsilon", "attack", "attack_epsilon")


class ResultsFolderError(ValueError):
    """A run folder that cannot be used as asked: the user's to resolve."""


def write_atomically(path, write, mode="w"):
    """Calls `write(handle)` on a temporary file, then moves it onto `path`."""

    def save(partial):
        with open(partial, mode) as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())

    _replace(path, save)


# Inside a `.keras` file (a zip archive), beside Keras's own entries, which
# `keras.saving.load_model` reads by name: what the model was trained on.
TRAINED_ON = "keras_adv/trained_on.json"


def save_model(model, path, trained_on=None):
    """`model.save(path)` atomically: a crash never leaves half a `.keras` file.

    Keras writes by file name, so the model goes to a unique `.keras` name
    beside `path` first, then is moved onto it. `trained_on` (a dict, see
    `data.identity`) is stored in the archive; `trained_on(path)` reads it.
    """

    def save(partial):
        model.save(partial)
        if trained_on is not None:
            with zipfile.ZipFile(partial, "a") as archive:
                archive.writestr(TRAINED_ON, json.dumps(trained_on, indent=1))

    _replace(path, save, suffix=".keras")


def trained_on(path):
    """The data record `save_model` stored in the `.keras` file, or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            if TRAINED_ON not in archive.namelist():
                return None
            return json.loads(archive.read(TRAINED_ON))
    except (OSError, zipfile.BadZipFile, ValueError):
        return None


def _replace(path, save, suffix=""):
    """`save(partial)` to a temporary file beside `path`, then a rename onto it."""
    partial = _temporary(path, suffix)
    try:
        save(partial)
        os.replace(partial, path)
    except OSError as error:
        raise _naming(error, path) from None
    finally:
        with contextlib.suppress(OSError):
            os.remove(partial)


def _temporary(path, suffix=""):
    """A new empty file beside `path`, with the permissions a plain `open`
    would give it (`mkstemp` makes files private)."""
    folder, name = os.path.split(path)
    try:
        handle, partial = tempfile.mkstemp(
            prefix=f"{_PARTIAL}{name}.", suffix=suffix, dir=folder or "."
        )
    except OSError as error:
        raise _naming(error, path) from None
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(partial, 0o666 & ~umask)
    return partial


def _naming(error, path):
    """`error` saying which file it concerns (a full disk names none)."""
    if error.filename is not None or error.errno is None:
        return error
    return OSError(error.errno, f"{error.strerror} (writing {path})")


def write_json(path, data):
    """Writes `data` to `path` atomically, keys sorted, indented."""
    write_atomically(path, lambda h: json.dump(data, h, indent=2, sort_keys=True))


@contextlib.contextmanager
def locked(folder, wait=None):
    """Holds the folder's lock (its own files: `results.json`, the report).

    Other processes hold it only for a merge, so it waits up to `wait`
    seconds (default `_LOCK_WAIT`) before `ResultsFolderError` names the
    process that holds it. Temporary files a killed run left in the folder
    itself are removed.
    """
    wait = _LOCK_WAIT if wait is None else wait
    with _lock(os.path.join(folder, _LOCK), wait) as owner:
        if owner is not None:
            raise busy(folder, owner)
        _remove_partials(folder, "")  # left by a run killed mid-write
        yield


def busy(folder, owner):
    """The refusal for a folder whose files process `owner` is writing."""
    return ResultsFolderError(
        f"another keras-adv run (process {owner}) is writing to {folder}; "
        "wait for it to finish, or use another --name."
    )


@contextlib.contextmanager
def claimed(folder, unit):
    """Holds unit `unit`'s lock while this process computes it.

    Yields `None` when the unit is this process's, or the id of the process
    that holds it (the caller leaves such a unit alone). Temporary files of
    the unit a killed run left (its result file, its model) are removed.
    """
    os.makedirs(os.path.join(folder, UNITS), exist_ok=True)
    with _lock(os.path.join(folder, UNITS, f"{unit}.lock"), 0.0) as owner:
        if owner is None:
            _remove_partials(os.path.join(folder, UNITS), f"{unit}.json")
            _remove_partials(os.path.join(folder, "models"), f"{unit}.keras")
        yield owner


def claimed_by(folder, unit):
    """The id of the process computing `unit` now, or `None`."""
    path = os.path.join(folder, UNITS, f"{unit}.lock")
    if not os.path.exists(path):
        return None
    with _lock(path, 0.0, write=False) as owner:
        return owner


@contextlib.contextmanager
def _lock(path, wait, write=True):
    """An exclusive `flock` on `path`, tried until `wait` seconds pass.

    Yields `None` when held (this process's id written into the file), or
    the id the holder wrote (`"unknown"` if none) when another holds it.
    """
    deadline = time.monotonic() + wait
    with open(path, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    yield handle.read().strip() or "unknown"
                    return
                time.sleep(0.05)
        try:
            if write:
                handle.seek(0)
                handle.truncate()
                handle.write(str(os.getpid()))
                handle.flush()
            yield None
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_partials(where, name):
    """Removes the temporary files of `name` (all of them when "") in `where`."""
    for entry in os.listdir(where) if os.path.isdir(where) else []:
        if entry.startswith(f"{_PARTIAL}{name}"):
            os.remove(os.path.join(where, entry))


def read(folder):
    """The folder's results, checked for shape; `None` if it has none yet."""
    return _read_checked(
        os.path.join(folder, RESULTS),
        "results file",
        _shape_problem,
        "move it away, use another --name, or pass --overwrite to start over",
    )


def _read_checked(path, kind, problem_of, fix):
    """The JSON at `path` (`None` if absent), or `ResultsFolderError` naming
    the file, what is wrong with it (`problem_of`) and the `fix`."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as handle:
            content = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsFolderError(f"cannot read {path} ({error}); {fix}.") from None
    problem = problem_of(content)
    if problem:
        raise ResultsFolderError(
            f"{path} is not a keras-adv {kind} ({problem}); {fix}."
        )
    return content


def holds_work(results, folder=None):
    """Whether anything in `results` took time to make (a model, a cell),
    or, given the `folder`, any unit's file in it."""
    return bool(results["training"] or results["cells"]) or bool(
        folder is not None and unit_files(folder)
    )


def _shape_problem(results):
    if not isinstance(results, dict):
        return f"a JSON {type(results).__name__}, not an object"
    for key, kind in _RESULTS_KEYS.items():
        if not isinstance(results.get(key), kind):
            return f"{key!r} missing or not a JSON {kind.__name__}"
    return _cells_problem(results["cells"])


def _cells_problem(cells):
    for cell in cells:
        if not isinstance(cell, dict) or any(k not in cell for k in _CELL_KEYS):
            return f"a cell without {', '.join(_CELL_KEYS)}"
    return None


# Units of work: one trained model and its cells each.


def unit_name(train_epsilon):
    """A unit's name, also its files' (`units/<name>.json`, `models/<name>.keras`)."""
    return f"train_eps_{train_epsilon:g}"


def unit_path(folder, unit):
    return os.path.join(folder, UNITS, f"{unit}.json")


def read_unit(folder, unit):
    """Unit `unit`'s results so far, checked for shape; `None` if none yet."""
    return _read_checked(
        unit_path(folder, unit),
        "unit file",
        _unit_problem,
        "delete it to compute that unit again",
    )


def write_unit(folder, unit, record):
    os.makedirs(os.path.join(folder, UNITS), exist_ok=True)
    write_json(unit_path(folder, unit), record)


def unit_files(folder):
    """The names of the units that have a result file in `folder`."""
    where = os.path.join(folder, UNITS)
    names = os.listdir(where) if os.path.isdir(where) else []
    return sorted(
        n[: -len(".json")]
        for n in names
        if n.endswith(".json") and not n.startswith(_PARTIAL)
    )


def finished(record):
    """Whether a unit's record is complete (its worst case and checks done)."""
    return record is not None and record.get("checks") is not None


def merge(folder):
    """`results.json` rebuilt from its header and the finished and partial
    units, in the order of the header's training budgets; returns it.

    `training`, `cells` and `checks` are the units' own; `missing` names the
    units not finished yet (none computed, or some cells still to do).
    Called under `locked(folder)`.
    """
    results = read(folder)
    if results is None:
        raise ResultsFolderError(f"{folder} holds no keras-adv sweep ({RESULTS})")
    training, cells, checks, missing = {}, [], [], []
    for eps in results["settings"]["train_epsilons"]:
        unit = unit_name(eps)
        record = read_unit(folder, unit)
        if record is None:
            missing.append(unit)
            continue
        if "training" in record:
            training[f"{eps:g}"] = record["training"]
        cells += record["cells"]
        if finished(record):
            checks.append(record["checks"])
        else:
            missing.append(unit)
    results.update(training=training, cells=cells, checks=checks, missing=missing)
    write_json(os.path.join(folder, RESULTS), results)
    return results


def _unit_problem(record):
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    if not isinstance(record.get("cells"), list):
        return "'cells' missing or not a JSON list"
    return _cells_problem(record["cells"])
