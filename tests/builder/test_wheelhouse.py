"""Wheelhouses: the target's tags, the offline check, and `mlreg wheelhouse` with real pip."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from packaging.specifiers import SpecifierSet
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

from mlreg.builder.context import image_requirements
from mlreg.builder.wheelhouse import Target, _satisfying_version, check
from mlreg.cli import main
from mlreg.errors import BuildError, InvalidInput
from mlreg.version import __version__
from tests.builder.conftest import MODEL_URI, isolated_pip_env, mlreg_cli
from tests.conftest import make_model_dir

TARGET = Target.manylinux("3.11")


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    requires: tuple[str, ...] = (),
    tag: str = "py3-none-any",
) -> Path:
    """A real (if empty) wheel: the metadata pip resolves with."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = directory / f"{dist}-{tag}.whl"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{dist}.dist-info/METADATA", metadata)
        z.writestr(
            f"{dist}.dist-info/WHEEL",
            f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n",
        )
        z.writestr(f"{dist}.dist-info/RECORD", "")
    return path


def test_manylinux_target():
    target = Target.manylinux("3.11.7", "2.36", "x86_64")
    assert target.python_version == "3.11"
    assert target.platforms[:2] == ("manylinux_2_36_x86_64", "manylinux_2_35_x86_64")
    assert target.platforms[-2:] == ("manylinux_2_5_x86_64", "manylinux2014_x86_64")
    assert target.describe() == "cp311 on manylinux_2_36_x86_64 and older"
    args = target.pip_args()
    assert args[:5] == ["--only-binary=:all:", "--implementation", "cp", "--python-version", "3.11"]
    assert "linux_x86_64" not in args
    # wheels built on a host may sit in a wheelhouse: the offline check accepts them
    assert target.pip_args(local_wheels=True)[-2:] == ["--platform", "linux_x86_64"]
    arm = Target.manylinux("3.12", "2.31", "aarch64")
    assert arm.platforms[0] == "manylinux_2_31_aarch64"
    assert arm.pip_args(local_wheels=True)[-1] == "linux_aarch64"


@pytest.mark.parametrize(
    ("python", "glibc", "message"),
    [
        ("3", "2.36", "Python version '3' is not MAJOR.MINOR, e.g. 3.11"),
        ("three.11", "2.36", "Python version 'three.11' is not MAJOR.MINOR, e.g. 3.11"),
        ("3.11", "1.2", "glibc '1.2' is not a glibc 2.N with manylinux tags"),
        ("3.11", "musl", "glibc 'musl' is not a glibc 2.N with manylinux tags"),
    ],
)
def test_bad_targets(python, glibc, message):
    with pytest.raises(InvalidInput) as e:
        Target.manylinux(python, glibc)
    assert e.value.message == message


@pytest.fixture
def house(tmp_path) -> Path:
    """app 1.0 needs lib-a, lib-b and an old lib-c; the image also installs TF Serving's client."""
    path = tmp_path / "house"
    path.mkdir()
    make_wheel(path, "app", "1.0", ("lib-a>=2", "lib-b", "lib-c<1"))
    make_wheel(path, "lib-a", "2.1")
    make_wheel(path, "lib-b", "1.0", ("lib-d",))
    make_wheel(path, "lib-c", "0.5")
    make_wheel(path, "lib-d", "3.0")
    make_wheel(path, "tensorflow-serving-api", "2.21.0", ("tensorflow>=2.21",))
    return path


def test_complete_wheelhouse(house):
    # TF Serving's client is checked --no-deps, as the image installs it
    assert check(house, ["app==1.0"], TARGET) == []


def test_check_names_every_missing_requirement(house):
    for prefix in ("lib_a-", "lib_b-", "tensorflow_serving_api-"):
        next(house.glob(f"{prefix}*.whl")).unlink()
    make_wheel(house, "lib-c", "2.0")
    next(house.glob("lib_c-0.5*.whl")).unlink()
    assert check(house, ["app==1.0", "extra>=3"], TARGET) == [
        "extra>=3",
        "lib-a>=2 (from app)",
        "lib-b (from app)",
        "lib-c<1 (from app) (found only 2.0)",
        "tensorflow-serving-api",
    ]


def test_wheels_for_another_platform_do_not_count(house):
    next(house.glob("lib_a-*.whl")).unlink()
    make_wheel(house, "lib-a", "2.1", tag="cp311-cp311-macosx_11_0_arm64")
    make_wheel(house, "lib-a", "2.2", tag="cp312-cp312-manylinux_2_17_x86_64")
    assert check(house, ["app==1.0"], TARGET) == ["lib-a>=2 (from app)"]
    make_wheel(house, "lib-a", "2.3", tag="cp311-cp311-linux_x86_64")  # built on a host
    assert check(house, ["app==1.0"], TARGET) == []


def test_conflicting_wheels_are_a_build_error(house):
    make_wheel(house, "other", "1.0", ("lib-c>=1",))
    make_wheel(house, "lib-c", "1.5")
    with pytest.raises(BuildError) as e:
        check(house, ["app==1.0", "other==1.0"], TARGET)
    assert e.value.message.startswith(f"pip cannot resolve the requirements from {house} alone: ")
    assert "conflicting dependencies" in e.value.message


def test_check_ignores_this_machines_pip_configuration(house, monkeypatch, tmp_path):
    """The image's pip has no configuration; the check must not find wheels elsewhere."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.move(next(house.glob("lib_d-*.whl")), elsewhere)
    monkeypatch.setenv("PIP_FIND_LINKS", str(elsewhere))
    assert check(house, ["app==1.0"], TARGET) == ["lib-d (from lib-b)"]


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (
            [],
            2,
            "does not say which Python it was saved with (python_env.yaml); pass "
            "--python-version, e.g. 3.11",
        ),
        (["--python-version", "three"], 2, "Python version 'three' is not MAJOR.MINOR, e.g. 3.11"),
    ],
    ids=["no-python", "bad-python"],
)
def test_wheelhouse_command_errors(tmp_path, args, exit_code, message):
    model = make_model_dir(tmp_path / "m")  # no python_env.yaml
    result = CliRunner().invoke(
        main, ["wheelhouse", "-m", str(model), "-d", str(tmp_path / "w"), *args]
    )
    assert result.exit_code == exit_code, result.output
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert not (tmp_path / "w").exists()


def test_wheelhouse_of_a_missing_model(tmp_path):
    result = CliRunner().invoke(
        main, ["wheelhouse", "-m", str(tmp_path / "nope"), "-d", str(tmp_path / "w")]
    )
    assert result.exit_code == 4 and "does not exist" in result.stderr


# --- the real thing: pip downloading the image's wheels (slow: ~360 MB the first time) ---


@pytest.mark.slow
def test_wheelhouse_holds_every_wheel_the_image_installs(wheelhouse_run, cnn_model):
    house = wheelhouse_run.path
    wheels = list(house.glob("*.whl"))
    names = {parse_wheel_filename(w.name)[0] for w in wheels}
    # the model's requirements (TensorFlow as its CPU build), mlreg and its own dependencies,
    # TF Serving's client
    assert {"mlreg", "tensorflow-cpu", "numpy", "pandas", "flask", "gunicorn", "docker",
            "sqlalchemy", "grpcio", "tensorflow-serving-api"} <= names  # fmt: skip
    assert "tensorflow" not in names
    # mlreg is the wheel of the running mlreg (no index has it)
    with zipfile.ZipFile(house / f"mlreg-{__version__}-py3-none-any.whl") as z:
        assert "mlreg/builder/wheelhouse.py" in z.namelist()
    # every wheel installs on the image's CPython 3.11, glibc 2.36, x86-64
    # pip widens manylinux2014 to the older legacy tags (libclang has only manylinux2010)
    platforms = [*TARGET.platforms, "manylinux2010_x86_64", "manylinux1_x86_64"]
    supported = {*cpython_tags((3, 11), platforms=platforms),
                 *compatible_tags((3, 11), "cp311", platforms)}  # fmt: skip
    for wheel in wheels:
        assert parse_wheel_filename(wheel.name)[3] & supported, wheel.name
    out = wheelhouse_run.result.stdout
    assert f"Wheelhouse {house}: " in out
    assert "for cp311 on manylinux_2_36_x86_64 and older" in out
    assert (
        f"Build with: mlreg build-docker -m {MODEL_URI} -n NAME --wheelhouse {house} --offline"
        in out
    )
    # pip's warnings about this machine's file:// mirror are not failures
    assert wheelhouse_run.result.returncode == 0


@pytest.mark.slow
def test_check_names_numpy_missing_from_a_real_wheelhouse(wheelhouse, cnn_model, tmp_path):
    house = tmp_path / "house"
    house.mkdir()
    for wheel in wheelhouse.glob("*.whl"):
        if not wheel.name.startswith(("numpy-", "pandas-")):
            os.link(wheel, house / wheel.name)
    reqs = image_requirements((cnn_model / "requirements.txt").read_text().split(), gpu=False)
    numpy = next(r for r in reqs if r.startswith("numpy"))
    assert check(house, reqs, TARGET) == [numpy, "pandas>=2.0 (from mlreg)"]


@pytest.mark.slow
def test_wheelhouse_uses_this_machines_pip_configuration(
    registry_env, local_index, wheelhouse, tmp_path
):
    """With only a (PIP_INDEX_URL) index configured, the wheels come from that index."""
    env = isolated_pip_env(registry_env, PIP_INDEX_URL=local_index.simple, PIP_NO_CACHE_DIR="1")
    before = len(local_index.requests)
    result = mlreg_cli("wheelhouse", "-m", MODEL_URI, "-d", str(tmp_path / "w"), "--quiet", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"Wheelhouse {tmp_path / 'w'}: ")
    assert len(result.stdout.splitlines()) == 1  # --quiet: the summary only
    fetched = local_index.requests[before:]
    assert "/simple/tensorflow-cpu/" in fetched
    assert any(p.startswith("/files/tensorflow_cpu-") for p in fetched)
    got = {w.name for w in (tmp_path / "w").glob("*.whl")}
    assert {w for w in got if not w.startswith("mlreg-")} <= {
        w.name for w in wheelhouse.glob("*.whl")
    }


@pytest.mark.slow
def test_failed_download_shows_pips_errors(cnn_model, local_index, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(cnn_model, model)
    with (model / "requirements.txt").open("a") as f:
        f.write("mlreg-no-such-dist==1.0\n")
    env = isolated_pip_env(dict(os.environ), PIP_INDEX_URL=local_index.simple, PIP_NO_CACHE_DIR="1")
    result = mlreg_cli("wheelhouse", "-m", str(model), "-d", str(tmp_path / "w"), env=env)
    assert result.returncode == 11, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "Error: pip download for cp311 on manylinux_2_36_x86_64 and older failed"
    assert "  | ERROR: No matching distribution found for mlreg-no-such-dist==1.0" in lines
    assert lines[-2].startswith(
        "  The index has no wheel of mlreg-no-such-dist==1.0 for cp311 on manylinux_2_36_x86_64"
    )
    assert lines[-1].startswith("  Full log: ")
    log = Path(lines[-1].removeprefix("  Full log: "))
    assert f"Looking in indexes: {local_index.simple}" in log.read_text()
    log.unlink()


@pytest.mark.parametrize(
    ("spec", "version"),
    [
        ("", "0"),
        (">=1.24", "1.24"),
        ("==2.4.6", "2.4.6"),
        (">1", "1.1"),
        ("<1", "0"),
        ("!=2", "2.1"),
        ("~=2.2", "2.2"),
        ("==1.0.*", "1.0"),
        (">=2,<2", None),
    ],
)
def test_stand_in_versions(spec, version):
    """The metadata-only stand-in for a missing requirement must satisfy it."""
    assert _satisfying_version(SpecifierSet(spec)) == version
