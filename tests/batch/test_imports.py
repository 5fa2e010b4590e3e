"""Batch scoring costs nothing until it is used: no pyspark, TensorFlow or batch modules."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ["pyspark", "tensorflow", "tqdm", "mlreg.batch"]


@pytest.mark.process  # a fresh interpreter for each
@pytest.mark.parametrize("module", ["mlreg.pyfunc", "mlreg.cli"])
def test_importing_does_not_load_batch_dependencies(module):
    code = f"import sys, {module}; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.slow  # imports pyspark in a fresh process
def test_spark_udf_is_a_public_name_of_pyfunc_loaded_on_demand():
    pytest.importorskip("pyspark")
    code = (
        "import sys; from mlreg import pyfunc; f = pyfunc.spark_udf; "
        "print(f.__module__, 'pyspark' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["mlreg.batch.spark", "True"]


def test_other_missing_names_are_still_attribute_errors():
    from mlreg import pyfunc

    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        pyfunc.nope  # noqa: B018
