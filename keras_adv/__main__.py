import sys

from keras_adv.cli import main

sys.exit(main())
