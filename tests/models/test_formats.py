"""Input examples, environment files, signature inference and signature JSON."""

from __future__ import annotations

import json
from importlib import metadata

import numpy as np
import pandas as pd
import pytest
import yaml

from mlreg.errors import InvalidInput
from mlreg.models import ColSpec, ModelSignature, ParamSchema, ParamSpec, Schema, TensorSpec
from mlreg.models.env import (
    default_tensorflow_requirements,
    read_requirements,
    resolve_requirements,
    write_env_files,
)
from mlreg.models.example import load_input_example, load_serving_input_example, save_input_example
from mlreg.models.infer import infer_signature
from mlreg.version import __version__

# --- input examples ----------------------------------------------------------------------


def test_ndarray_example(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    info = save_input_example(tmp_path, x)
    assert info == {
        "artifact_path": "input_example.json",
        "serving_input_path": "serving_input_example.json",
        "type": "ndarray",
    }
    assert json.loads((tmp_path / "input_example.json").read_text()) == x.tolist()
    assert json.loads(load_serving_input_example(tmp_path, info)) == {"inputs": x.tolist()}
    np.testing.assert_array_equal(load_input_example(tmp_path, info), x)


def test_dict_of_arrays_example(tmp_path):
    x = {"a": np.ones((1, 3), np.float32), "b": [1, 2]}
    info = save_input_example(tmp_path, x)
    body = json.loads(load_serving_input_example(tmp_path, info))
    assert body == {"inputs": {"a": [[1.0, 1.0, 1.0]], "b": [1, 2]}}
    back = load_input_example(tmp_path, info)
    assert back["b"].tolist() == [1, 2]


def test_dataframe_example_uses_split_orient(tmp_path):
    df = pd.DataFrame({"x": [1.5, 2.5], "s": ["a", "b"]})
    info = save_input_example(tmp_path, df)
    assert info["type"] == "dataframe" and info["pandas_orient"] == "split"
    body = json.loads(load_serving_input_example(tmp_path, info))
    assert body == {"dataframe_split": {"columns": ["x", "s"], "data": [[1.5, "a"], [2.5, "b"]]}}
    pd.testing.assert_frame_equal(load_input_example(tmp_path, info), df)


def test_records_example_is_a_json_object(tmp_path):
    info = save_input_example(tmp_path, [{"x": 1}, {"x": 2}])
    assert info["type"] == "json_object"
    assert load_input_example(tmp_path, info) == [{"x": 1}, {"x": 2}]


@pytest.mark.parametrize(
    ("example", "message"),
    [
        (np.array([[1.0, np.nan]]), "contains NaN or Infinity"),
        (pd.DataFrame({"x": [np.inf]}), "column 'x': contains NaN or Infinity"),
        (object(), "unsupported input example type object"),
    ],
    ids=["nan-array", "inf-frame", "object"],
)
def test_bad_examples(tmp_path, example, message):
    with pytest.raises(InvalidInput, match=message):
        save_input_example(tmp_path, example)


# --- environment files -------------------------------------------------------------------


def test_default_tensorflow_requirements_are_pinned_to_what_is_installed():
    reqs = default_tensorflow_requirements()
    assert reqs[0] == f"mlreg=={__version__}"
    assert f"numpy=={metadata.version('numpy')}" in reqs
    tf_dist = "tensorflow-cpu" if "tensorflow-cpu==" in " ".join(reqs) else "tensorflow"
    assert f"{tf_dist}=={metadata.version(tf_dist)}" in reqs


def test_resolve_requirements_replace_extend_and_file(tmp_path):
    assert resolve_requirements(["a==1"], pip_requirements=["b>=2"]) == ["b>=2"]
    assert resolve_requirements(["a==1"], extra_pip_requirements=["c"]) == ["a==1", "c"]
    req_file = tmp_path / "reqs.txt"
    req_file.write_text("# comment\nd==4\n\ne[extra]>=1 ; python_version>'3'\n")
    assert resolve_requirements([], pip_requirements=req_file) == [
        "d==4",
        "e[extra]>=1 ; python_version>'3'",
    ]


def test_resolve_requirements_errors(tmp_path):
    with pytest.raises(InvalidInput, match="not both"):
        resolve_requirements([], ["a"], ["b"])
    with pytest.raises(
        InvalidInput, match=r"pip_requirements line 2: 'not a req!!' is not a valid"
    ):
        resolve_requirements([], pip_requirements=["a", "not a req!!"])
    with pytest.raises(InvalidInput, match="is not a file"):
        resolve_requirements([], pip_requirements="missing.txt")


def test_env_files_match_mlflow_layout(tmp_path):
    write_env_files(tmp_path, ["numpy==2.0.0", "mlreg==0.1.0"], python_version="3.11.7")
    assert (tmp_path / "requirements.txt").read_text() == "numpy==2.0.0\nmlreg==0.1.0\n"
    env = yaml.safe_load((tmp_path / "python_env.yaml").read_text())
    assert env["python"] == "3.11.7"
    assert env["dependencies"] == ["-r requirements.txt"]
    assert [b.split("==")[0] for b in env["build_dependencies"]] == ["pip", "setuptools", "wheel"]
    conda = yaml.safe_load((tmp_path / "conda.yaml").read_text())
    assert conda["channels"] == ["conda-forge"]
    assert conda["dependencies"][0] == "python=3.11.7"
    assert conda["dependencies"][2] == {"pip": ["numpy==2.0.0", "mlreg==0.1.0"]}
    assert read_requirements(tmp_path) == ["numpy==2.0.0", "mlreg==0.1.0"]


# --- signature inference -----------------------------------------------------------------


def test_infer_from_arrays_and_outputs():
    sig = infer_signature(np.zeros((5, 28, 28, 3), np.float32), np.zeros((5, 2), np.float32))
    assert sig.inputs == Schema([TensorSpec("float32", (-1, 28, 28, 3))])
    assert sig.outputs == Schema([TensorSpec("float32", (-1, 2))])


def test_infer_from_dict_of_arrays():
    sig = infer_signature({"a": np.zeros((2, 3)), "b": [1, 2]})
    assert sig.inputs == Schema(
        [TensorSpec("float64", (-1, 3), "a"), TensorSpec("int64", (-1,), "b")]
    )


def test_infer_from_dataframe_dtypes():
    df = pd.DataFrame(
        {
            "l": np.array([1, 2], np.int64),
            "i": np.array([1, 2], np.int32),
            "d": [1.0, 2.0],
            "f": np.array([1, 2], np.float32),
            "b": [True, False],
            "s": ["a", None],
            "y": [b"x", b"y"],
            "t": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        }
    )
    assert infer_signature(df).inputs.to_dict() == [
        {"type": "long", "name": "l", "required": True},
        {"type": "integer", "name": "i", "required": True},
        {"type": "double", "name": "d", "required": True},
        {"type": "float", "name": "f", "required": True},
        {"type": "boolean", "name": "b", "required": True},
        {"type": "string", "name": "s", "required": False},
        {"type": "binary", "name": "y", "required": True},
        {"type": "datetime", "name": "t", "required": True},
    ]


def test_infer_from_records_strings_and_nested_lists():
    assert infer_signature([{"x": 1.5}, {"x": 2.5}]).inputs == Schema([ColSpec("double", "x")])
    assert infer_signature(["a", "b"]).inputs == Schema([ColSpec("string")])
    assert infer_signature([[1, 2], [3, 4]]).inputs == Schema([TensorSpec("int64", (-1, 2))])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([[1, 2], [3]], "ragged nested list"),
        (np.float32(3.0), "cannot infer a schema from float32"),
        ([], "empty list"),
        ({}, "empty dict"),
        (pd.DataFrame({"x": [None, None]}), "every value is missing"),
    ],
    ids=["ragged", "scalar", "empty-list", "empty-dict", "all-missing"],
)
def test_infer_errors(data, message):
    with pytest.raises(InvalidInput, match=message):
        infer_signature(data)


def test_infer_params():
    sig = infer_signature(np.zeros((1, 2)), params={"k": 3, "t": 0.5, "on": True, "s": ["a"]})
    assert sig.params == ParamSchema(
        [
            ParamSpec("k", "long", 3),
            ParamSpec("t", "double", 0.5),
            ParamSpec("on", "boolean", True),
            ParamSpec("s", "string", ["a"], shape=(-1,)),
        ]
    )
    with pytest.raises(InvalidInput, match="param 'bad': unsupported type dict"):
        infer_signature(np.zeros((1, 2)), params={"bad": {}})
    with pytest.raises(InvalidInput, match="param 'mixed': a list param needs values of one type"):
        infer_signature(np.zeros((1, 2)), params={"mixed": [1, "a"]})


# --- signature JSON ----------------------------------------------------------------------


def test_signature_json_is_mlflows():
    sig = ModelSignature(Schema([ColSpec("double", "x")]), Schema([TensorSpec("float32", (-1, 2))]))
    assert sig.to_dict() == {
        "inputs": '[{"type": "double", "name": "x", "required": true}]',
        "outputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}]',
        "params": None,
    }
    assert ModelSignature.from_dict(sig.to_dict()) == sig


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Schema([TensorSpec("float32", (-1,), "a"), ColSpec("double", "b")]), "cannot mix"),
        (lambda: Schema([ColSpec("double", "a"), ColSpec("long", "a")]), "duplicate names"),
        (
            lambda: Schema([TensorSpec("float32", (-1,)), TensorSpec("float32", (-1,))]),
            "must name each",
        ),
        (lambda: Schema([ColSpec("double", "a"), ColSpec("double")]), "either every spec"),
        (lambda: ColSpec("decimal", "a"), "unsupported column type 'decimal'"),
        (lambda: TensorSpec("complex64", (-1,)), "unsupported tensor dtype 'complex64'"),
        (lambda: Schema([]), "at least one input"),
        (lambda: ParamSpec("p", "dict", {}), "param 'p': unsupported type 'dict'"),
    ],
    ids=[
        "mixed",
        "duplicate",
        "unnamed-multi",
        "partly-named",
        "col-type",
        "dtype",
        "empty",
        "param",
    ],
)
def test_schema_validation(build, message):
    with pytest.raises(InvalidInput, match=message):
        build()
