"""`python -m keras_adv`: the `keras-adv` command."""

import sys

from keras_adv_cli import main

sys.exit(main())
