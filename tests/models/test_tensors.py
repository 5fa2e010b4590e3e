"""TensorIO: the named input arrays a tensor function is called with, checked before the call
(the function is called by its flat inputs, which check nothing)."""

from __future__ import annotations

import numpy as np
import pytest

from mlreg.errors import SchemaError
from mlreg.models.tensors import TensorIO, TensorPort

IO = TensorIO(
    [TensorPort("image", "keras_tensor", np.dtype(np.float32), (-1, 28, 28, 3))],
    [TensorPort("scores", "output_0", np.dtype(np.float32), (-1, 2))],
)


def test_an_array_that_fits_is_fed_as_it_is() -> None:
    x = np.zeros((5, 28, 28, 3), np.float32)
    assert IO.feed(x)["keras_tensor"] is x
    assert IO.feed({"image": x})["keras_tensor"] is x


@pytest.mark.parametrize(
    "shape",
    [(1, 28, 28, 4), (28, 28, 3), (1, 1, 28, 28, 3)],
    ids=["wrong-dimension", "fewer-dimensions", "more-dimensions"],
)
def test_an_array_of_the_right_dtype_but_the_wrong_shape_is_refused(
    shape: tuple[int, ...],
) -> None:
    with pytest.raises(SchemaError) as e:
        IO.feed(np.zeros(shape, np.float32))
    assert e.value.message == (
        f"input 'image': expected shape (-1, 28, 28, 3), got {shape}".replace(",)", ")")
    )


def test_another_dtype_is_converted_when_lossless() -> None:
    fed = IO.feed(np.zeros((2, 28, 28, 3), np.float16))["keras_tensor"]
    assert fed.dtype == np.float32 and fed.shape == (2, 28, 28, 3)
