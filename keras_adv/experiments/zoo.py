"""Reference models: small, fast, and the ones the demo and sweep train."""

import keras


def small_cnn(input_shape=(8, 8, 1), num_classes=10, seed=None):
    """A two-convolution CNN that outputs logits; about 85k weights on digits.

    Args:
        input_shape: shape of one input image. Defaults to `(8, 8, 1)`.
        num_classes: number of classes. Defaults to 10.
        seed: seed of the weight initialisers, for reproducible runs.
            Defaults to `None`.
    """

    def init(offset):
        return keras.initializers.GlorotUniform(
            seed=None if seed is None else seed + offset
        )

    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(
                32, 3, padding="same", activation="relu", kernel_initializer=init(0)
            ),
            layers.Conv2D(
                64, 3, padding="same", activation="relu", kernel_initializer=init(1)
            ),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(64, activation="relu", kernel_initializer=init(2)),
            layers.Dense(num_classes, kernel_initializer=init(3)),
        ],
        name="small_cnn",
    )


# `--model NAME`: builders called as `builder(input_shape, num_classes, seed)`.
MODELS = {"small_cnn": small_cnn}
