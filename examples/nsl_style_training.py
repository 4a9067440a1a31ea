"""An NSL adversarial-regularization script, run by keras-adv on Keras 3.

Written the way TensorFlow Neural Structured Learning's tutorials write it
(a base model with named inputs, a `tf.data` pipeline of dicts that hold the
label, `make_adv_reg_config`, `AdversarialRegularization`). The one line
that differs from an NSL script is the import: `import
neural_structured_learning as nsl` became `import keras_adv.compat.nsl as
nsl`. It then runs on TensorFlow, JAX and PyTorch (`KERAS_BACKEND`), where
NSL itself no longer runs on current TensorFlow and Keras.

Run: `python examples/nsl_style_training.py` (about 10 s on this project's
2-core CPU; the digits from scikit-learn stand in for MNIST offline).
"""

import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits

import keras_adv.compat.nsl as nsl

IMAGE_INPUT_NAME = "image"
LABEL_INPUT_NAME = "label"
EPOCHS = 5
BATCH_SIZE = 32


def build_base_model():
    inputs = tf.keras.Input(shape=(8, 8, 1), dtype=tf.float32, name=IMAGE_INPUT_NAME)
    x = tf.keras.layers.Conv2D(16, 3, activation="relu")(inputs)
    x = tf.keras.layers.Flatten()(x)
    x = tf.keras.layers.Dense(64, activation="relu")(x)
    outputs = tf.keras.layers.Dense(10, activation="softmax")(x)
    return tf.keras.Model(inputs=inputs, outputs=outputs)


def make_dataset(images, labels, shuffle):
    dataset = tf.data.Dataset.from_tensor_slices(
        {IMAGE_INPUT_NAME: images, LABEL_INPUT_NAME: labels}
    )
    if shuffle:
        dataset = dataset.shuffle(1024, seed=0)
    return dataset.batch(BATCH_SIZE)


digits = load_digits()
images = (digits.images / 16.0).astype(np.float32)[..., None]
labels = digits.target.astype(np.int64)
train_data = make_dataset(images[:1400], labels[:1400], shuffle=True)
test_data = make_dataset(images[1400:], labels[1400:], shuffle=False)

tf.keras.utils.set_random_seed(0)
base_model = build_base_model()
adv_config = nsl.configs.make_adv_reg_config(
    multiplier=0.2,
    adv_step_size=0.05,
    adv_grad_norm="infinity",
    clip_value_min=0.0,
    clip_value_max=1.0,
)
adv_model = nsl.keras.AdversarialRegularization(
    base_model, label_keys=[LABEL_INPUT_NAME], adv_config=adv_config
)
adv_model.compile(
    optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
)
adv_model.fit(train_data, epochs=EPOCHS, verbose=0)
results = adv_model.evaluate(test_data, return_dict=True, verbose=0)

base_model.compile(
    optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
)
base_accuracy = base_model.evaluate(
    images[1400:], labels[1400:], return_dict=True, verbose=0
)["accuracy"]
print(f"base model accuracy on clean test images: {base_accuracy:.3f}")
print(f"adversarial-regularized model: {results}")
