"""Datasets. `digits` (scikit-learn's bundled 8x8 digits) needs no network."""


def load_digits(test_fraction=0.25, seed=0):
    """scikit-learn's 1,797 8x8 digit images, scaled to [0, 1], split stratified.

    Args:
        test_fraction: share of the examples held out for testing, in (0, 1).
            Defaults to 0.25.
        seed: seed of the split. Defaults to 0.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: `x` float32 `(n, 8, 8, 1)`
        in [0, 1], `y` int32 class labels 0-9.
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(
            "Argument `test_fraction` must be in (0, 1). "
            f"Received: test_fraction={test_fraction}"
        )
    digits = sklearn_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target.astype("int32")
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    return (x_train, y_train), (x_test, y_test)
