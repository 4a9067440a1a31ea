import numpy as np
from keras import ops

from keras_adv.experiments.zoo import small_cnn


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
