"""scikit-learn's bundled 8x8 digits (1797 images, 10 classes): no download needed."""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def load_digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (x_train, y_train, x_test, y_test): a stratified 75/25 split.

    x is float32 [N, 64] in [0, 1] (pixel values 0..16 divided by 16), so a 4-bit unsigned
    input quantizer with scale 1/16 represents every pixel but 16 exactly; y is int64.
    """
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    y = y.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=seed, stratify=y)
    return x_train, y_train, x_test, y_test
