"""Environment files: requirements.txt, python_env.yaml and conda.yaml."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from mlreg.errors import InvalidInput
from mlreg.models import env
from mlreg.models.env import (
    CONDA_ENV_FILE,
    PYTHON_ENV_FILE,
    REQUIREMENTS_FILE,
    default_tensorflow_requirements,
    infer_pip_requirements,
    installed_version,
    read_python_version,
    read_requirements,
    resolve_requirements,
    write_env_files,
)
from mlreg.version import __version__

DEFAULT = ["mlreg==0.1.0", "numpy==2.0.0"]


def test_file_names_are_mlflows():
    assert (REQUIREMENTS_FILE, PYTHON_ENV_FILE, CONDA_ENV_FILE) == (
        "requirements.txt",
        "python_env.yaml",
        "conda.yaml",
    )


# --- pinning -------------------------------------------------------------------------------


def test_installed_version():
    assert installed_version("numpy") == metadata.version("numpy")
    assert installed_version("surely-not-installed-mlreg-dist") is None


def test_infer_pip_requirements_pins_installed_versions():
    assert infer_pip_requirements(["numpy", "pyyaml"]) == [
        f"numpy=={metadata.version('numpy')}",
        f"pyyaml=={metadata.version('pyyaml')}",
    ]
    assert infer_pip_requirements([]) == []


def test_infer_pip_requirements_refuses_what_is_not_installed():
    with pytest.raises(InvalidInput) as e:
        infer_pip_requirements(["numpy", "surely-not-installed-mlreg-dist"])
    assert e.value.message == (
        "cannot pin requirement 'surely-not-installed-mlreg-dist': it is not installed"
    )


def test_default_tensorflow_requirements_pin_installed_versions():
    reqs = default_tensorflow_requirements()
    tf_dist = "tensorflow-cpu" if installed_version("tensorflow-cpu") else "tensorflow"
    assert reqs == [
        f"mlreg=={__version__}",
        f"{tf_dist}=={metadata.version(tf_dist)}",
        f"numpy=={metadata.version('numpy')}",
    ]
    assert __version__ == metadata.version("mlreg")


def fake_installed(monkeypatch, versions):
    monkeypatch.setattr(env, "installed_version", versions.get)


def test_default_requirements_prefer_the_cpu_build(monkeypatch):
    fake_installed(monkeypatch, {"tensorflow-cpu": "2.1", "tensorflow": "2.2", "numpy": "1.0"})
    assert default_tensorflow_requirements() == [
        f"mlreg=={__version__}",
        "tensorflow-cpu==2.1",
        "numpy==1.0",
    ]


def test_default_requirements_fall_back_to_tensorflow(monkeypatch):
    fake_installed(monkeypatch, {"tensorflow": "2.2", "numpy": "1.0"})
    assert default_tensorflow_requirements() == [
        f"mlreg=={__version__}",
        "tensorflow==2.2",
        "numpy==1.0",
    ]


def test_default_requirements_without_tensorflow(monkeypatch):
    fake_installed(monkeypatch, {"numpy": "1.0"})
    with pytest.raises(InvalidInput) as e:
        default_tensorflow_requirements()
    assert e.value.message == "TensorFlow is not installed (pip install tensorflow-cpu)"


# --- resolve_requirements --------------------------------------------------------------------


def test_no_user_requirements_gives_the_defaults():
    assert resolve_requirements(DEFAULT) == DEFAULT
    resolve_requirements(DEFAULT).append("x")
    assert DEFAULT == ["mlreg==0.1.0", "numpy==2.0.0"]  # a copy, never the caller's list


def test_pip_requirements_replace_the_defaults():
    assert resolve_requirements(DEFAULT, pip_requirements=["b>=2", "c"]) == ["b>=2", "c"]
    assert resolve_requirements(DEFAULT, pip_requirements=[]) == []


def test_extra_requirements_extend_the_defaults_without_duplicates():
    assert resolve_requirements(DEFAULT, extra_pip_requirements=["c", "numpy==2.0.0", "d<3"]) == [
        *DEFAULT,
        "c",
        "d<3",
    ]
    assert resolve_requirements(DEFAULT, extra_pip_requirements=[]) == DEFAULT


def test_both_is_an_error():
    with pytest.raises(InvalidInput) as e:
        resolve_requirements(DEFAULT, ["a"], ["b"])
    assert e.value.message == "pass pip_requirements or extra_pip_requirements, not both"
    with pytest.raises(InvalidInput, match="not both"):
        resolve_requirements(DEFAULT, pip_requirements=[], extra_pip_requirements=[])


def test_comments_blank_lines_and_markers():
    assert resolve_requirements(
        [],
        pip_requirements=[
            "# a comment",
            "",
            "   ",
            "a==1  # pinned",
            "  b>=2  ",
            "e[extra]>=1 ; python_version>'3'",
            "pkg @ https://example.com/pkg-1.0.tar.gz",
        ],
    ) == [
        "a==1",
        "b>=2",
        "e[extra]>=1 ; python_version>'3'",
        "pkg @ https://example.com/pkg-1.0.tar.gz",
    ]


@pytest.mark.parametrize("as_str", [False, True], ids=["path", "str"])
def test_requirements_from_a_file(tmp_path, as_str):
    req_file = tmp_path / "reqs.txt"
    req_file.write_text("# comment\nd==4\n\ne[extra]>=1 ; python_version>'3'\n")
    arg = str(req_file) if as_str else req_file
    expected = ["d==4", "e[extra]>=1 ; python_version>'3'"]
    assert resolve_requirements(DEFAULT, pip_requirements=arg) == expected
    assert resolve_requirements(DEFAULT, extra_pip_requirements=arg) == [*DEFAULT, *expected]


def test_invalid_line_in_a_list_names_the_line():
    with pytest.raises(InvalidInput) as e:
        resolve_requirements(DEFAULT, pip_requirements=["a", "# c", "not a req!!"])
    assert e.value.message.startswith(
        "pip_requirements line 3: 'not a req!!' is not a valid requirement ("
    )
    with pytest.raises(InvalidInput, match=r"^extra_pip_requirements line 1: 'x==' is not a valid"):
        resolve_requirements(DEFAULT, extra_pip_requirements=["x=="])


def test_invalid_line_in_a_file_names_the_file_and_line(tmp_path):
    req_file = tmp_path / "reqs.txt"
    req_file.write_text("a==1\n\n==oops\n")
    with pytest.raises(InvalidInput) as e:
        resolve_requirements(DEFAULT, pip_requirements=req_file)
    assert e.value.message.startswith(f"{req_file} line 3: '==oops' is not a valid requirement (")


def test_a_string_that_is_not_a_file_is_an_error():
    with pytest.raises(InvalidInput) as e:
        resolve_requirements(DEFAULT, pip_requirements="numpy==2.0.0")
    assert e.value.message == (
        "pip_requirements: 'numpy==2.0.0' is not a file; pass a list of requirements"
    )
    with pytest.raises(
        InvalidInput, match=r"^extra_pip_requirements: 'missing\.txt' is not a file"
    ):
        resolve_requirements(DEFAULT, extra_pip_requirements="missing.txt")


def test_a_missing_path_object_is_invalid_input(tmp_path):
    # A str that names no file is InvalidInput; a Path that names no file should be too.
    with pytest.raises(InvalidInput, match=r"missing\.txt"):
        resolve_requirements(DEFAULT, pip_requirements=tmp_path / "missing.txt")


# --- writing the files ---------------------------------------------------------------------


def build_pins():
    return "".join(f"- {d}=={metadata.version(d)}\n" for d in ("pip", "setuptools", "wheel"))


def test_env_files_exact_content(tmp_path):
    write_env_files(tmp_path, ["numpy==2.0.0", "mlreg==0.1.0"], python_version="3.11.7")
    assert (tmp_path / "requirements.txt").read_text() == "numpy==2.0.0\nmlreg==0.1.0\n"
    assert (tmp_path / "python_env.yaml").read_text() == (
        f"python: 3.11.7\nbuild_dependencies:\n{build_pins()}dependencies:\n- -r requirements.txt\n"
    )
    assert (tmp_path / "conda.yaml").read_text() == (
        "channels:\n"
        "- conda-forge\n"
        "dependencies:\n"
        "- python=3.11.7\n"
        f"- pip<={metadata.version('pip')}\n"
        "- pip:\n"
        "  - numpy==2.0.0\n"
        "  - mlreg==0.1.0\n"
        "name: mlreg-env\n"
    )


def test_env_files_default_to_the_running_python(tmp_path):
    write_env_files(tmp_path, ["a==1"])
    running = ".".join(map(str, sys.version_info[:3]))
    assert yaml.safe_load((tmp_path / "python_env.yaml").read_text())["python"] == running
    conda = yaml.safe_load((tmp_path / "conda.yaml").read_text())
    assert conda["dependencies"][0] == f"python={running}"
    assert read_python_version(tmp_path) == running


def test_env_files_without_requirements(tmp_path):
    write_env_files(tmp_path, [], python_version="3.12.1")
    assert (tmp_path / "requirements.txt").read_text() == ""
    conda = yaml.safe_load((tmp_path / "conda.yaml").read_text())
    assert conda["dependencies"][2] == {"pip": []}
    assert read_requirements(tmp_path) == []


def test_env_files_when_build_tools_are_missing(tmp_path, monkeypatch):
    fake_installed(monkeypatch, {"pip": "24.0"})
    write_env_files(tmp_path, ["a==1"], python_version="3.11.7")
    env_doc = yaml.safe_load((tmp_path / "python_env.yaml").read_text())
    assert env_doc["build_dependencies"] == ["pip==24.0"]
    fake_installed(monkeypatch, {})
    write_env_files(tmp_path, ["a==1"], python_version="3.11.7")
    env_doc = yaml.safe_load((tmp_path / "python_env.yaml").read_text())
    assert env_doc["build_dependencies"] == []
    conda = yaml.safe_load((tmp_path / "conda.yaml").read_text())
    assert conda["dependencies"][1] == "pip"


def test_env_files_overwrite_old_ones(tmp_path):
    write_env_files(tmp_path, ["a==1", "b==2"], python_version="3.11.7")
    write_env_files(tmp_path, ["c==3"], python_version="3.11.7")
    assert read_requirements(tmp_path) == ["c==3"]


# --- reading them back -----------------------------------------------------------------------


def test_read_requirements_round_trip(tmp_path):
    reqs = ["numpy==2.0.0", "e[extra]>=1 ; python_version>'3'"]
    write_env_files(tmp_path, reqs, python_version="3.11.7")
    assert read_requirements(tmp_path) == reqs
    assert read_python_version(tmp_path) == "3.11.7"


def test_read_requirements_skips_comments(tmp_path):
    (tmp_path / "requirements.txt").write_text("# pinned by mlreg\na==1 # why\n\nb\n")
    assert read_requirements(tmp_path) == ["a==1", "b"]
    assert read_requirements(str(tmp_path)) == ["a==1", "b"]


def test_read_requirements_without_a_file(tmp_path):
    assert read_requirements(tmp_path) == []


def test_read_requirements_names_a_bad_line(tmp_path):
    (tmp_path / "requirements.txt").write_text("a==1\nnot valid!!\n")
    with pytest.raises(InvalidInput) as e:
        read_requirements(tmp_path)
    path = Path(tmp_path) / "requirements.txt"
    assert e.value.message.startswith(f"{path} line 2: 'not valid!!' is not a valid requirement")


def test_read_python_version_edge_cases(tmp_path):
    assert read_python_version(tmp_path) is None
    (tmp_path / "python_env.yaml").write_text("- a list\n")
    assert read_python_version(tmp_path) is None
    (tmp_path / "python_env.yaml").write_text("build_dependencies: []\n")
    assert read_python_version(tmp_path) is None
    (tmp_path / "python_env.yaml").write_text("python: 3.11\n")
    assert read_python_version(tmp_path) == "3.11"


# --- the real MLflow package agrees ---------------------------------------------------------


@pytest.mark.mlflow
def test_mlflow_reads_our_python_env(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.utils.environment import _PythonEnv

    write_env_files(tmp_path, ["numpy==2.0.0"], python_version="3.11.7")
    py_env = _PythonEnv.from_yaml(str(tmp_path / "python_env.yaml"))
    assert py_env.python == "3.11.7"
    assert py_env.dependencies == ["-r requirements.txt"]
    assert py_env.build_dependencies == [
        f"{d}=={metadata.version(d)}" for d in ("pip", "setuptools", "wheel")
    ]
