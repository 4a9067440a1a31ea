"""The `keras-adv` command's entry point, kept outside the library so it starts at once.

`import keras_adv` imports Keras and its backend (seconds for TensorFlow): the
package registers its serializable classes on import, which
`keras.saving.load_model` needs, so it cannot be lazy. This package parses the
command line with the standard library only (`--help`, `--version` and
argument errors never load a framework), then loads the library quietly and
runs the command in `keras_adv.experiments.cli`.
"""

import sys

from keras_adv_cli import framework
from keras_adv_cli.parser import build_parser

# Deep learning frameworks whose absence is the user's set-up, not a bug.
BACKEND_MODULES = {"tensorflow", "jax", "jaxlib", "torch"}


def main(argv=None):
    """Entry point of `keras-adv` and `python -m keras_adv`; returns the exit code.

    0 on success; 2 for bad input (one line on stderr); 1 when the system
    refused (a full disk, a permission, a Keras backend not installed), one
    line too; 130 on Ctrl-C. A bug in keras-adv raises, with its traceback.
    """
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        framework.load(verbose=bool(args.verbose))
    except ModuleNotFoundError as error:
        if error.name not in BACKEND_MODULES:
            raise
        print(f"keras-adv {args.command}: error: {error}", file=sys.stderr)
        return 1
    from keras_adv.experiments import cli

    return cli.run(args)
