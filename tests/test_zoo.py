"""The reference models: logits out, seeded weights, and the literature's
architectures with the parameter counts of the authors' released code."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_adv.experiments import zoo
from keras_adv.experiments.zoo import small_cnn

# Trainable parameters of the released PyTorch / TensorFlow models (what
# `sum(p.numel() for p in model.parameters())` or the TF variables count),
# counted on MNIST (28x28x1) and CIFAR-10 (32x32x3) shapes with 10 classes.
PUBLISHED = {
    "madry_mnist": ((28, 28, 1), 3_274_634),  # MadryLab/mnist_challenge
    "mnist_net": ((28, 28, 1), 166_406),  # locuslab/fast_adversarial MNIST
    "lenet_small": ((28, 28, 1), 166_406),  # Croce et al. cnn_lenet_small
    "preact_resnet18": ((32, 32, 3), 11_172_170),  # fast_adversarial CIFAR10
    "wide_resnet28_10": ((32, 32, 3), 36_479_194),  # without TRADES' sub_block1
    "wide_resnet34_10": ((32, 32, 3), 46_160_474),
}


def trainable(model):
    return sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)


def test_small_cnn_outputs_logits_per_class():
    model = small_cnn(seed=0)
    out = ops.convert_to_numpy(model(np.random.rand(3, 8, 8, 1).astype("float32")))
    assert out.shape == (3, 10)
    assert not np.allclose(out.sum(axis=1), 1.0)  # logits, not probabilities


def test_small_cnn_seed_fixes_the_weights():
    first = small_cnn(seed=3).get_weights()
    again = small_cnn(seed=3).get_weights()
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_the_literatures_models_have_the_originals_parameter_count(name):
    shape, count = PUBLISHED[name]
    model = zoo.MODELS[name](shape, 10, 0)
    assert trainable(model) == count
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize("name", ["madry_mnist", "mnist_net", "lenet_small"])
def test_the_small_literature_models_give_seeded_logits_on_any_class_count(name):
    x = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype("float32")
    first = zoo.MODELS[name]((28, 28, 1), 7, 1)
    again = zoo.MODELS[name]((28, 28, 1), 7, 1)
    other = zoo.MODELS[name]((28, 28, 1), 7, 2)
    out = ops.convert_to_numpy(first(x))
    assert out.shape == (2, 7) and not np.allclose(out.sum(axis=1), 1.0)
    np.testing.assert_array_equal(out, ops.convert_to_numpy(again(x)))
    assert not np.array_equal(out, ops.convert_to_numpy(other(x)))


def test_the_residual_models_run_on_cifar_shapes_with_pytorchs_batch_norm():
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    for name in ("preact_resnet18", "wide_resnet28_10"):
        model = zoo.MODELS[name]((32, 32, 3), 10, 0)
        out = ops.convert_to_numpy(model(x, training=False))
        assert out.shape == (2, 10) and np.isfinite(out).all()
        # BatchNorm as in PyTorch: epsilon 1e-5, running averages at 0.1.
        norms = [
            layer
            for layer in model.layers
            if isinstance(layer, keras.layers.BatchNormalization)
        ]
        assert norms and all(n.epsilon == 1e-5 and n.momentum == 0.9 for n in norms)


def test_strided_convolutions_pad_symmetrically_as_pytorch_does():
    """PyTorch's padding=1 on a stride-2 4x4 convolution: Keras's "same" would
    pad 0 before and 1 after on an even size; the zoo pads 1 and 1."""
    model = zoo.mnist_net((28, 28, 1), 10, 0)
    pads = [
        layer for layer in model.layers if isinstance(layer, keras.layers.ZeroPadding2D)
    ]
    assert [p.padding for p in pads] == [((1, 1), (1, 1))] * 2
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.padding for c in convs] == ["valid"] * 2


def test_a_wide_resnet_depth_that_is_not_6n_plus_4_is_refused():
    with pytest.raises(ValueError, match="6n \\+ 4"):
        zoo.wide_resnet(30, 10)


def test_every_zoo_model_is_a_model_source_name():
    from keras_adv.experiments import model_source

    for name in zoo.MODELS:
        assert model_source.kind(name) == "zoo"
