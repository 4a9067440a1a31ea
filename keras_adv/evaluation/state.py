"""An evaluation's per-example results, saved after each attack run so it resumes.

`evaluate_robustness(..., state_path=...)` writes this file after every
attack at every budget: which examples each run left robust, the clean
results, and each attack's random state after its run. A rerun of the same
evaluation (the same model weights, examples, attacks, budgets and seed)
skips the runs it finds and continues each attack from its saved random
state, so an interrupted evaluation ends with the numbers an uninterrupted
one gives. The file is replaced whole on each write (a temporary file, then
a rename), so a crash leaves the last complete state.
"""

import hashlib
import json
import os
import tempfile

import numpy as np

VERSION = 1


class StateFileError(ValueError):
    """A `state_path` that cannot be resumed: unreadable, or another evaluation's."""


def pack(flags):
    """Per-example booleans as a hex string, one bit each (`unpack` reverses it)."""
    return np.packbits(np.asarray(flags, bool)).tobytes().hex()


def unpack(text, count):
    """The `count` booleans `pack` wrote."""
    return np.unpackbits(np.frombuffer(bytes.fromhex(text), np.uint8))[:count] > 0


def digest(arrays):
    """SHA-256 of arrays' dtypes, shapes and bytes, as hex: their identity."""
    hasher = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        hasher.update(f"{array.dtype.str}{array.shape}".encode())
        hasher.update(memoryview(array).cast("B"))
    return hasher.hexdigest()


class EvaluationState:
    """The saved runs of one evaluation at `path`, or none yet.

    Args:
        path: the state file (JSON). Created on the first `put`.
        identity: a JSON-ready dict naming the evaluation (model weights and
            examples by hash, attack configs, budgets, seed); a file made by
            another evaluation is refused, never overwritten.
        count: how many examples each run covers.
    """

    def __init__(self, path, identity, count):
        if not isinstance(path, (str, os.PathLike)):
            raise ValueError(
                "Argument `state_path` must be a file path (str or os.PathLike). "
                f"Received: state_path={path!r}"
            )
        self.path, self.identity, self.count = os.fspath(path), identity, count
        self.runs, self.clean, self.random_states = {}, None, {}
        folder = os.path.dirname(os.path.abspath(self.path))
        if os.path.isdir(self.path) or not os.access(folder, os.W_OK):
            raise StateFileError(
                f"Argument `state_path`: {self.path} must be a file in a writable "
                "folder (checked before any attack runs, so no work is lost)."
            )
        if not os.path.exists(self.path):
            return
        try:
            with open(self.path, encoding="utf-8") as handle:
                saved = json.load(handle)
        except (OSError, ValueError) as error:
            raise StateFileError(
                f"Argument `state_path`: cannot read {self.path} ({error}); "
                "delete it to start the evaluation over."
            ) from None
        if saved.get("version") != VERSION or saved.get("identity") != identity:
            raise StateFileError(
                f"Argument `state_path`: {self.path} holds the state of another "
                "evaluation (its model weights, examples, attacks, budgets or "
                "seed differ); pass another path, or delete it to start over."
            )
        self.runs = saved["runs"]
        self.clean = None if saved["clean"] is None else unpack(saved["clean"], count)
        self.random_states = saved["random_states"]

    @staticmethod
    def _key(name, epsilon):
        return f"{name} @ {epsilon!r}"

    def get(self, name, epsilon):
        """The saved per-example results of `name` at `epsilon`, or None."""
        text = self.runs.get(self._key(name, epsilon))
        return None if text is None else unpack(text, self.count)

    def put(self, name, epsilon, correct, clean, random_state):
        """Records one run and writes the file (replaced whole)."""
        self.runs[self._key(name, epsilon)] = pack(correct)
        self.clean = clean
        self.random_states[name] = np.asarray(random_state).tolist()
        content = json.dumps(
            {
                "version": VERSION,
                "identity": self.identity,
                "clean": pack(clean),
                "runs": self.runs,
                "random_states": self.random_states,
            }
        )
        folder = os.path.dirname(os.path.abspath(self.path))
        handle, partial = tempfile.mkstemp(dir=folder, suffix=".partial")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(content)
            os.replace(partial, self.path)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
