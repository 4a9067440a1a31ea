"""Reference models: the job's small CNN and the literature's architectures.

Each builder is called as `builder(input_shape, num_classes, seed)` and
returns a functional Keras model that outputs logits. The literature's
models follow the authors' released code layer for layer: the same widths,
kernels, strides and padding (PyTorch's symmetric padding written as
`ZeroPadding2D` + `"valid"`, where Keras's `"same"` would pad a strided
convolution asymmetrically), BatchNorm with PyTorch's epsilon 1e-5 and
momentum 0.1, and the authors' weight initialisation. Their trainable
parameter counts equal the originals' (`tests/test_zoo.py`; Keras also
stores BatchNorm's moving statistics as weights, which PyTorch keeps as
buffers and does not count).
"""

import math

import keras

layers = keras.layers


class _Seeds:
    """A fresh seed per initializer: the same `seed`, the same weights."""

    def __init__(self, seed):
        self.seed, self.count = seed, 0

    def __call__(self):
        self.count += 1
        return None if self.seed is None else self.seed * 1000 + self.count


def _torch_default(seeds, fan_in):
    """PyTorch's default `Conv2d`/`Linear` initialisation: kernel and bias
    uniform in +-1/sqrt(fan_in) (`kaiming_uniform_(a=sqrt(5))`)."""
    bound = 1.0 / math.sqrt(fan_in)
    return {
        "kernel_initializer": keras.initializers.VarianceScaling(
            1.0 / 3.0, "fan_in", "uniform", seed=seeds()
        ),
        "bias_initializer": keras.initializers.RandomUniform(
            -bound, bound, seed=seeds()
        ),
    }


def _torch_conv(x, filters, kernel, stride, padding, seeds, bias=True, init=None):
    """PyTorch's `Conv2d(..., padding=padding)`: symmetric zero padding."""
    fan_in = kernel * kernel * x.shape[-1]
    if padding:
        x = layers.ZeroPadding2D(padding)(x)
    initializers = init or _torch_default(seeds, fan_in)
    if not bias:
        initializers.pop("bias_initializer", None)
    return layers.Conv2D(
        filters, kernel, strides=stride, use_bias=bias, **initializers
    )(x)


def _torch_linear(x, units, seeds, kernel_initializer=None, bias_initializer=None):
    initializers = _torch_default(seeds, x.shape[-1])
    if kernel_initializer is not None:
        initializers["kernel_initializer"] = kernel_initializer
    if bias_initializer is not None:
        initializers["bias_initializer"] = bias_initializer
    return layers.Dense(units, **initializers)(x)


def _torch_batch_norm(x):
    """PyTorch's `BatchNorm2d` defaults (momentum 0.1 there is 0.9 here)."""
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)


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


def madry_mnist(input_shape=(28, 28, 1), num_classes=10, seed=None):
    """The MNIST CNN of Madry et al. 2018, "Towards Deep Learning Models
    Resistant to Adversarial Attacks" (arXiv:1706.06083; MadryLab
    `mnist_challenge/model.py`): two 5x5 convolutions (32, 64 filters,
    `SAME`) each with ReLU and 2x2 max pooling, a 1024-unit dense layer,
    logits. Weights truncated normal (stddev 0.1), biases 0.1, as released.
    3,274,634 parameters on MNIST.
    """
    seeds = _Seeds(seed)

    def init():
        return {
            "kernel_initializer": keras.initializers.TruncatedNormal(
                stddev=0.1, seed=seeds()
            ),
            "bias_initializer": keras.initializers.Constant(0.1),
        }

    inputs = keras.Input(input_shape)
    x = inputs
    for filters in (32, 64):
        x = layers.Conv2D(filters, 5, padding="same", activation="relu", **init())(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(1024, activation="relu", **init())(x)
    outputs = layers.Dense(num_classes, **init())(x)
    return keras.Model(inputs, outputs, name="madry_mnist")


def mnist_net(input_shape=(28, 28, 1), num_classes=10, seed=None):
    """Wong et al. 2020's MNIST model, "Fast is better than free"
    (arXiv:2001.03994; locuslab `fast_adversarial/MNIST/mnist_net.py`):
    two 4x4 stride-2 convolutions (16, 32 filters, padding 1) with ReLU, a
    100-unit dense layer, logits; PyTorch's default initialisation.
    166,406 parameters on MNIST.
    """
    seeds = _Seeds(seed)
    inputs = keras.Input(input_shape)
    x = inputs
    for filters in (16, 32):
        x = layers.ReLU()(_torch_conv(x, filters, 4, 2, 1, seeds))
    x = layers.Flatten()(x)
    x = layers.ReLU()(_torch_linear(x, 100, seeds))
    outputs = _torch_linear(x, num_classes, seeds)
    return keras.Model(inputs, outputs, name="mnist_net")


def lenet_small(input_shape=(28, 28, 1), num_classes=10, seed=None):
    """The small LeNet-style CNN of Croce et al. 2019, "Provable Robustness
    of ReLU networks via Maximization of Linear Regions" (AISTATS 2019,
    arXiv:1810.07481; `models.LeNetSmall`, the `cnn_lenet_small` of their
    MNIST and Fashion-MNIST results): two 4x4 stride-2 `SAME` convolutions
    (16, 32 filters) with ReLU, a 100-unit dense layer, logits; He-normal
    weights (truncated, stddev sqrt(2 / fan_in)) and zero biases, as
    released. On 28x28 inputs the layers are those of `mnist_net` (166,406
    parameters); the initialisation and the padding of odd sizes differ.
    """
    seeds = _Seeds(seed)

    def init(fan_in):
        return keras.initializers.TruncatedNormal(
            stddev=math.sqrt(2.0 / fan_in), seed=seeds()
        )

    inputs = keras.Input(input_shape)
    x = inputs
    for filters in (16, 32):
        fan_in = 4 * 4 * x.shape[-1]
        x = layers.Conv2D(
            filters,
            4,
            strides=2,
            padding="same",
            activation="relu",
            kernel_initializer=init(fan_in),
        )(x)
    x = layers.Flatten()(x)
    x = layers.Dense(100, activation="relu", kernel_initializer=init(x.shape[-1]))(x)
    outputs = layers.Dense(num_classes, kernel_initializer=init(x.shape[-1]))(x)
    return keras.Model(inputs, outputs, name="lenet_small")


def _preact_block(x, planes, stride, seeds):
    """`PreActBlock` of Wong et al.'s `preact_resnet.py` (He et al. 2016)."""
    out = layers.ReLU()(_torch_batch_norm(x))
    shortcut = x
    if stride != 1 or x.shape[-1] != planes:
        shortcut = _torch_conv(out, planes, 1, stride, 0, seeds, bias=False)
    out = _torch_conv(out, planes, 3, stride, 1, seeds, bias=False)
    out = layers.ReLU()(_torch_batch_norm(out))
    out = _torch_conv(out, planes, 3, 1, 1, seeds, bias=False)
    return layers.Add()([out, shortcut])


def preact_resnet18(input_shape=(32, 32, 3), num_classes=10, seed=None):
    """PreActResNet-18 (He et al. 2016, "Identity Mappings in Deep Residual
    Networks", arXiv:1603.05027) as in Wong et al. 2020's and Rice et al.
    2020's CIFAR-10 code (locuslab `fast_adversarial/CIFAR10/
    preact_resnet.py`, with its final BatchNorm and ReLU before the
    pooling); PyTorch's default initialisation. 11,172,170 parameters on
    CIFAR-10.
    """
    seeds = _Seeds(seed)
    inputs = keras.Input(input_shape)
    x = _torch_conv(inputs, 64, 3, 1, 1, seeds, bias=False)
    for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        x = _preact_block(x, planes, stride, seeds)
        x = _preact_block(x, planes, 1, seeds)
    x = layers.ReLU()(_torch_batch_norm(x))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = _torch_linear(x, num_classes, seeds)
    return keras.Model(inputs, outputs, name="preact_resnet18")


def _wide_block(x, planes, stride, seeds):
    """`BasicBlock` of the WideResNet used by Madry et al., TRADES and Rice
    et al.: a shared pre-activation when the width changes."""
    out = layers.ReLU()(_torch_batch_norm(x))
    if x.shape[-1] == planes:
        shortcut = x
    else:
        shortcut = _torch_conv(
            out, planes, 1, stride, 0, seeds, bias=False, init=_wrn_conv_init(seeds)
        )
    out = _torch_conv(
        out, planes, 3, stride, 1, seeds, bias=False, init=_wrn_conv_init(seeds)
    )
    out = layers.ReLU()(_torch_batch_norm(out))
    out = _torch_conv(
        out, planes, 3, 1, 1, seeds, bias=False, init=_wrn_conv_init(seeds)
    )
    return layers.Add()([out, shortcut])


def _wrn_conv_init(seeds):
    """The WideResNet code's `normal_(0, sqrt(2 / (k * k * out_channels)))`."""
    return {
        "kernel_initializer": keras.initializers.VarianceScaling(
            2.0, "fan_out", "untruncated_normal", seed=seeds()
        )
    }


def wide_resnet(
    depth, widen_factor, input_shape=(32, 32, 3), num_classes=10, seed=None
):
    """WideResNet-`depth`-`widen_factor` (Zagoruyko and Komodakis 2016,
    arXiv:1605.07146) as in TRADES (Zhang et al. 2019, yaodongyu/TRADES
    `models/wideresnet.py`) and Rice et al. 2020: three groups of
    `(depth - 4) / 6` pre-activation blocks of widths 16k, 32k, 64k, a final
    BatchNorm and ReLU, global average pooling, logits; the released
    initialisation. (TRADES' file also builds a `sub_block1` its forward
    pass never uses; PyTorch counts its weights, 48,262,586 in all for
    WideResNet-34-10; it is not built here.)
    """
    if (depth - 4) % 6:
        raise ValueError(
            f"A WideResNet's depth must be 6n + 4 (28, 34, ...). Received: {depth}"
        )
    seeds = _Seeds(seed)
    inputs = keras.Input(input_shape)
    x = _torch_conv(inputs, 16, 3, 1, 1, seeds, bias=False, init=_wrn_conv_init(seeds))
    for planes, stride in ((16, 1), (32, 2), (64, 2)):
        for index in range((depth - 4) // 6):
            x = _wide_block(
                x, planes * widen_factor, stride if index == 0 else 1, seeds
            )
    x = layers.ReLU()(_torch_batch_norm(x))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = _torch_linear(
        x, num_classes, seeds, bias_initializer=keras.initializers.Zeros()
    )
    return keras.Model(inputs, outputs, name=f"wide_resnet{depth}_{widen_factor}")


def wide_resnet28_10(input_shape=(32, 32, 3), num_classes=10, seed=None):
    """WideResNet-28-10 (`wide_resnet`): 36,479,194 parameters on CIFAR-10."""
    return wide_resnet(28, 10, input_shape, num_classes, seed)


def wide_resnet34_10(input_shape=(32, 32, 3), num_classes=10, seed=None):
    """WideResNet-34-10 (`wide_resnet`), Madry et al.'s and TRADES' CIFAR-10
    model: 46,160,474 parameters on CIFAR-10."""
    return wide_resnet(34, 10, input_shape, num_classes, seed)


# `--model NAME`: builders called as `builder(input_shape, num_classes, seed)`.
MODELS = {
    "small_cnn": small_cnn,
    "madry_mnist": madry_mnist,
    "mnist_net": mnist_net,
    "lenet_small": lenet_small,
    "preact_resnet18": preact_resnet18,
    "wide_resnet28_10": wide_resnet28_10,
    "wide_resnet34_10": wide_resnet34_10,
}
