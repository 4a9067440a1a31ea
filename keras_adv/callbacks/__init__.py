"""Callbacks that publish attack strength and defense effect into Keras `logs`."""

from keras_adv.callbacks.adversarial_monitor import AdversarialMonitor
from keras_adv.callbacks.catastrophic_overfitting import CatastrophicOverfittingGuard
from keras_adv.callbacks.robustness_curve import RobustnessCurve

__all__ = ["AdversarialMonitor", "CatastrophicOverfittingGuard", "RobustnessCurve"]
