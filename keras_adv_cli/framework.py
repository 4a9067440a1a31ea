"""Loading keras-adv and its Keras backend without the framework's log noise.

TensorFlow writes `oneDNN custom operations are on`, `Could not find cuda
drivers` and, on some CPU machines, `cuInit ... UNKNOWN ERROR (303)` to the
process's stderr from C++ while it is imported, before its logging is set up,
so no environment variable hides them. They are information, not problems, and
they teach a new user to ignore stderr. So the import runs with file
descriptor 2 pointed at a temporary file, which is shown only if the import
fails; `TF_CPP_MIN_LOG_LEVEL` (unless the user set it) hides the C++ lines
that come later. `--verbose` leaves both alone.
"""

import os
import sys
import tempfile


def load(verbose=False):
    """Imports `keras_adv` (Keras and its backend with it); returns the module."""
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        import keras_adv

        return keras_adv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            import keras_adv
        except BaseException:
            _restore(saved)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        _restore(saved)
    return keras_adv


def _restore(saved):
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
