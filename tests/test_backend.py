import keras
import numpy as np
from keras import ops

from keras_adv import backend


def test_value_and_input_grad_is_the_analytic_gradient():
    x = np.array([[1.0, -2.0], [0.5, 3.0]], dtype="float32")
    value, grad = backend.value_and_input_grad(
        lambda t: ops.sum(ops.square(t) * 3.0), ops.convert_to_tensor(x)
    )
    assert float(ops.convert_to_numpy(value)) == np.float32(3.0 * np.sum(x**2))
    np.testing.assert_allclose(ops.convert_to_numpy(grad), 6.0 * x)


def test_value_and_input_grad_with_aux_differentiates_only_the_scalar():
    x = ops.convert_to_tensor(np.array([[1.0, -2.0]], dtype="float32"))

    def fn(t):
        per_example = ops.sum(ops.square(t), axis=1)
        return ops.sum(per_example), (per_example, t * 10.0)

    (value, (per_example, scaled)), grad = backend.value_and_input_grad(
        fn, x, has_aux=True
    )
    assert float(ops.convert_to_numpy(value)) == 5.0
    np.testing.assert_allclose(ops.convert_to_numpy(per_example), [5.0])
    np.testing.assert_allclose(ops.convert_to_numpy(scaled), [[10.0, -20.0]])
    np.testing.assert_allclose(ops.convert_to_numpy(grad), [[2.0, -4.0]])


def test_a_loss_independent_of_the_input_has_a_zero_gradient():
    """A gradient-masking model must give zeros, not None or an error."""
    x = ops.ones((2, 3))
    _, grad = backend.value_and_input_grad(
        lambda t: ops.sum(ops.stop_gradient(t) * 2.0), x
    )
    np.testing.assert_array_equal(ops.convert_to_numpy(grad), np.zeros((2, 3)))


def test_gradient_flows_through_a_model_but_not_into_its_weights():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])
    kernel = model.layers[0].get_weights()[0]
    _, grad = backend.value_and_input_grad(
        lambda t: ops.sum(model(t)), ops.ones((2, 3))
    )
    np.testing.assert_allclose(ops.convert_to_numpy(grad), np.tile(kernel.T, (2, 1)))
    np.testing.assert_array_equal(model.layers[0].get_weights()[0], kernel)


def test_eager_values_are_concrete():
    assert backend.is_concrete(ops.ones((2,)))
    assert backend.is_concrete(np.ones(2))


def test_compile_fn_sees_variable_updates_between_calls():
    variable = keras.Variable(1.0)
    compiled = backend.compile_fn(lambda t: t * variable, [variable])
    assert float(ops.convert_to_numpy(compiled(ops.ones(())))) == 1.0
    variable.assign(4.0)
    assert float(ops.convert_to_numpy(compiled(ops.ones(())))) == 4.0


def test_only_the_backend_package_imports_a_framework():
    import pathlib
    import re

    package = pathlib.Path(backend.__file__).parents[1]
    pattern = re.compile(r"^\s*(import|from)\s+(tensorflow|jax|torch)\b", re.M)
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "backend" not in path.parts and pattern.search(path.read_text())
    ]
    assert offenders == []
