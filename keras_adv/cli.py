"""The `keras-adv` command: parses arguments and calls the library."""

import argparse
import sys

from keras_adv import __version__


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-adv",
        description=(
            "Adversarial attacks and adversarial training for Keras 3. "
            "Library use: `import keras_adv`; see the README. The sweep, "
            "train and evaluate subcommands are on the way."
        ),
    )
    parser.add_argument(
        "--version", action="version", version=f"keras-adv {__version__}"
    )
    return parser


def main(argv=None):
    """Entry point of `keras-adv` and `python -m keras_adv`; returns the exit code."""
    build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    build_parser().print_help()
    return 0
