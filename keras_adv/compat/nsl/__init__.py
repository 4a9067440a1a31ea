"""NSL's adversarial regularization, on keras-adv: change the import only.

```python
import keras_adv.compat.nsl as nsl  # was: import neural_structured_learning as nsl

adv_config = nsl.configs.make_adv_reg_config(multiplier=0.2, adv_step_size=0.05)
adv_model = nsl.keras.AdversarialRegularization(
    base_model, label_keys=["label"], adv_config=adv_config
)
adv_model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
adv_model.fit({"image": x_train, "label": y_train}, batch_size=32, epochs=5)
```

Underneath it is an `AdversarialModel` with the attack `configs.attack_of`
builds from the config and the objective `Regularized(multiplier)`, the loss
NSL minimises: `L(x) + multiplier * L(x_adv)`. See `docs/migrating.md` for
what is and is not carried over.
"""

from keras_adv.compat.nsl import configs
from keras_adv.compat.nsl import keras
from keras_adv.compat.nsl.configs import AdvNeighborConfig
from keras_adv.compat.nsl.configs import AdvRegConfig
from keras_adv.compat.nsl.configs import NormType
from keras_adv.compat.nsl.configs import make_adv_reg_config
from keras_adv.compat.nsl.keras import AdversarialRegularization

__all__ = [
    "AdvNeighborConfig",
    "AdvRegConfig",
    "AdversarialRegularization",
    "NormType",
    "configs",
    "keras",
    "make_adv_reg_config",
]
