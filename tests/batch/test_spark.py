"""spark_udf on a real local[2] Spark: column, tensor and multi-output models, errors, models:/."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")

from pyspark.errors import PythonException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from mlreg.errors import InvalidInput

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory):
    # The executors get an empty registry of their own: a models:/ URI must not be resolved
    # there, only on the driver.
    elsewhere = tmp_path_factory.mktemp("executor-home")
    # PySpark starts its Python workers with $PYSPARK_PYTHON (default: python3 on the PATH).
    patch = pytest.MonkeyPatch()
    patch.setenv("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("mlreg-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.executorEnv.MLREG_HOME", str(elsewhere))
        .config("spark.executorEnv.MLREG_REGISTRY_URI", f"sqlite:///{elsewhere}/registry.db")
        .getOrCreate()
    )
    yield session
    session.stop()
    patch.undo()


def columns_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.integers(0, 100, n)}
    )


def test_column_model_on_100k_rows_matches_pyfunc(spark, columns_dir):
    from mlreg import pyfunc

    pdf = columns_frame(100_000)
    udf = pyfunc.spark_udf(spark, str(columns_dir))
    df = spark.createDataFrame(pdf).repartition(4)
    got = df.withColumn("pred", udf("a", "b", "c")).toPandas()
    expected = np.asarray(pyfunc.load_model(columns_dir).predict(got[["a", "b", "c"]])).ravel()
    np.testing.assert_allclose(got["pred"].to_numpy(), expected, rtol=1e-6)
    # A struct is matched by field name, whatever its order; no columns: the signature's names.
    small = spark.createDataFrame(pdf.head(50))
    by_struct = small.select(udf(F.struct("c", "b", "a")).alias("p")).toPandas()["p"]
    by_name = small.select(udf().alias("p")).toPandas()["p"]
    np.testing.assert_allclose(by_struct, expected_for(columns_dir, pdf.head(50)), rtol=1e-6)
    np.testing.assert_allclose(by_name, by_struct)


def expected_for(model_dir: Path, frame: pd.DataFrame) -> np.ndarray:
    from mlreg import pyfunc

    return np.asarray(pyfunc.load_model(model_dir).predict(frame)).ravel()


@pytest.mark.parametrize("layout", ["flat", "nested", "bytes"])
def test_tensor_model_reshapes_array_columns(spark, cnn_dir, layout):
    from mlreg import pyfunc
    from tests.serving.models import images

    x = images(300, seed=4)
    rows = {
        "flat": lambda: list(x.reshape(300, -1)),
        "nested": x.tolist,
        "bytes": lambda: [row.tobytes() for row in x],  # Spark BinaryType
    }[layout]()
    df = spark.createDataFrame(pd.DataFrame({"id": range(300), "image": rows})).repartition(3)
    udf = pyfunc.spark_udf(spark, str(cnn_dir))
    assert udf.returnType.simpleString() == "array<float>"
    got = df.select("id", udf("image").alias("p")).toPandas().sort_values("id")
    np.testing.assert_allclose(
        np.stack(got["p"].to_numpy()), pyfunc.load_model(cnn_dir).predict(x), rtol=1e-5, atol=1e-6
    )


def test_named_outputs_become_a_struct(spark, multi_dir):
    from mlreg import pyfunc
    from tests.serving.models import multi_example

    data = multi_example(n=20)
    pdf = pd.DataFrame({"a": list(data["a"]), "b": list(data["b"])})
    udf = pyfunc.spark_udf(spark, str(multi_dir))
    # The output signature's order (probs, score) and types: a (-1, 1) tensor is one float.
    assert udf.returnType.simpleString() == "struct<probs:array<float>,score:float>"
    got = spark.createDataFrame(pdf).select(udf("a", "b").alias("out")).select("out.*").toPandas()
    expected = pyfunc.load_model(multi_dir).predict(data)
    np.testing.assert_allclose(got["score"], np.asarray(expected["score"]).ravel(), rtol=1e-5)
    np.testing.assert_allclose(np.stack(got["probs"]), expected["probs"], rtol=1e-5)


def test_a_bad_column_type_fails_the_task_with_the_signature_message(spark, columns_dir):
    from mlreg import pyfunc

    udf = pyfunc.spark_udf(spark, str(columns_dir))
    df = spark.createDataFrame(pd.DataFrame({"a": ["x", "y"], "b": [1.0, 2.0], "c": [1, 2]}))
    with pytest.raises(PythonException) as e:
        df.select(udf("a", "b", "c")).collect()
    assert "mlreg.errors.SchemaError: column 'a': expected float64, got strings" in str(e.value)


def test_a_result_type_that_cannot_hold_the_output_says_so(spark, cnn_dir):
    from mlreg import pyfunc
    from tests.serving.models import images

    udf = pyfunc.spark_udf(spark, str(cnn_dir), result_type="double")
    df = spark.createDataFrame(pd.DataFrame({"image": list(images(2).reshape(2, -1))}))
    with pytest.raises(PythonException) as e:
        df.select(udf("image")).collect()
    assert (
        "result_type double holds one value per row, but the model returns (2,) values per "
        "row; use an array result_type such as 'array<float>'"
    ) in str(e.value)


def test_only_the_local_env_manager(spark, columns_dir):
    from mlreg import pyfunc

    with pytest.raises(InvalidInput, match="env_manager 'conda' is not supported"):
        pyfunc.spark_udf(spark, str(columns_dir), env_manager="conda")


def test_models_uri_is_resolved_on_the_driver_and_pinned(
    spark, columns_dir, tmp_path, tracking_home
):
    import keras

    import mlreg
    from mlreg import pyfunc
    from mlreg.tensorflow import save_model

    with mlreg.MlregClient() as client:
        mlreg.register_model(str(columns_dir), "cols")
        client.transition_model_version_stage("cols", 1, "Production")
        udf = pyfunc.spark_udf(spark, "models:/cols/Production")
        assert (udf.source.name, udf.source.version) == ("cols", 1)
        # A newer version takes the stage after the UDF was made: the job keeps version 1.
        keras.utils.set_random_seed(9)
        other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        save_model(other, tmp_path / "other", signature=pyfunc.load_model(columns_dir).signature)
        mlreg.register_model(str(tmp_path / "other"), "cols")
        client.transition_model_version_stage("cols", 2, "Production", True)
    pdf = columns_frame(64, seed=3)
    got = spark.createDataFrame(pdf).select(udf("a", "b", "c").alias("p")).toPandas()["p"]
    np.testing.assert_allclose(got, expected_for(columns_dir, pdf), rtol=1e-6)
    assert not np.allclose(got, expected_for(tmp_path / "other", pdf))


def test_each_worker_loads_the_model_once_and_keeps_it(spark, columns_dir):
    from pyspark.sql.functions import pandas_udf

    from mlreg import pyfunc

    udf = pyfunc.spark_udf(spark, str(columns_dir))
    df = spark.createDataFrame(columns_frame(4_000)).repartition(8)
    df.select(udf("a", "b", "c")).collect()

    digest = udf.digest

    # Spark reads the UDF's type hints, which name module-level Iterator and pd.Series.
    @pandas_udf("string")
    def loaded(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        import os

        from mlreg.batch import spark as worker

        for batch in batches:
            model = worker._loaded.get(digest)
            yield pd.Series([f"{os.getpid()} {None if model is None else id(model)}"] * len(batch))

    before = {r[0] for r in df.select(loaded("a")).collect()}
    df.select(udf("a", "b", "c")).collect()  # a second job: the same workers, the same models
    after = {r[0] for r in df.select(loaded("a")).collect()}
    # local[2]: two reused workers, each holding the model it loaded for its first task.
    assert len(before) <= 2 and not any(s.endswith(" None") for s in before)
    assert after == before
