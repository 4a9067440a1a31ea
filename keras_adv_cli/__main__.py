"""`python -m keras_adv_cli`: the `keras-adv` command, as quick to start."""

import sys

from keras_adv_cli import main

sys.exit(main())
