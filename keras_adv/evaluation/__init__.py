"""Measuring robustness: the probe engine, `evaluate_robustness`, sanity checks."""

from keras_adv.evaluation.robustness import RobustnessResult
from keras_adv.evaluation.robustness import RobustnessWarning
from keras_adv.evaluation.robustness import autoattack
from keras_adv.evaluation.robustness import evaluate_robustness

__all__ = [
    "RobustnessResult",
    "RobustnessWarning",
    "autoattack",
    "evaluate_robustness",
]
