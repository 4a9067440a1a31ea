"""A run's folder: `results.json` written atomically, one writer at a time.

Nothing a user made is lost or mixed: every write replaces the file whole
(a reader sees the old or the new one, never half), temporary files have
unique names, a lock keeps a second run out of a folder in use (released by
the operating system even after `kill -9`), and a damaged or foreign
`results.json` is refused by name instead of being overwritten.
"""

import contextlib
import fcntl
import json
import os
import tempfile

RESULTS = "results.json"
_LOCK = ".keras-adv.lock"
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


def save_model(model, path):
    """`model.save(path)` atomically: a crash never leaves half a `.keras` file.

    Keras writes by file name, so the model goes to a unique `.keras` name
    beside `path` first, then is moved onto it.
    """
    _replace(path, model.save, suffix=".keras")


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
def locked(folder):
    """Holds the folder's lock; `ResultsFolderError` if another run holds it."""
    path = os.path.join(folder, _LOCK)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            raise ResultsFolderError(
                f"another keras-adv run (process {owner}) is writing to {folder}; "
                "wait for it to finish, or use another --name."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        _remove_partials(folder)  # left by a run killed mid-write
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_partials(folder):
    """Removes temporary files where runs write: the folder and its models/."""
    for where in (folder, os.path.join(folder, "models")):
        for name in os.listdir(where) if os.path.isdir(where) else []:
            if name.startswith(_PARTIAL):
                os.remove(os.path.join(where, name))


def read(folder):
    """The folder's results, checked for shape; `None` if it has none yet."""
    path = os.path.join(folder, RESULTS)
    if not os.path.exists(path):
        return None
    fix = "move it away, use another --name, or pass --overwrite to start over"
    try:
        with open(path) as handle:
            results = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsFolderError(f"cannot read {path} ({error}); {fix}.") from None
    problem = _shape_problem(results)
    if problem:
        raise ResultsFolderError(
            f"{path} is not a keras-adv results file ({problem}); {fix}."
        )
    return results


def holds_work(results):
    """Whether anything in `results` took time to make (a model, a cell)."""
    return bool(results["training"] or results["cells"])


def _shape_problem(results):
    if not isinstance(results, dict):
        return f"a JSON {type(results).__name__}, not an object"
    for key, kind in _RESULTS_KEYS.items():
        if not isinstance(results.get(key), kind):
            return f"{key!r} missing or not a JSON {kind.__name__}"
    for cell in results["cells"]:
        if not isinstance(cell, dict) or any(k not in cell for k in _CELL_KEYS):
            return f"a cell without {', '.join(_CELL_KEYS)}"
    return None
