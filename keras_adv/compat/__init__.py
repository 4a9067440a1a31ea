"""Ways in for users of other adversarial-training libraries.

`keras_adv.compat.nsl` takes TensorFlow Neural Structured Learning's
adversarial-regularization API (`nsl.configs.make_adv_reg_config`,
`nsl.keras.AdversarialRegularization`) and trains with keras-adv underneath,
on Keras 3 and every backend.
"""
