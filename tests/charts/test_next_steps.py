"""`mlreg build-docker` ends with the commands that run the image, Helm's included."""

from __future__ import annotations

import shlex

import pytest

from mlreg.builder.engine import BuiltImage
from mlreg.cli.build import HELM_CHART, helm_release_name, next_steps

from .conftest import ROOT


def built(model_name: str = "") -> BuiltImage:
    labels = {"io.mlreg.model.name": model_name} if model_name else {}
    return BuiltImage("sha256:abc", [], 1, labels, 0, 1)


def test_next_steps_include_docker_and_helm():
    steps = next_steps("registry.example.com/team/mnist:3", built("mnist"))
    assert steps == [
        "docker run -p 8080:8080 registry.example.com/team/mnist:3",
        "helm install mnist charts/mlreg-serving --set image.repository="
        "registry.example.com/team/mnist --set-string image.tag=3",
    ]
    assert (ROOT / HELM_CHART / "Chart.yaml").is_file()


def test_helm_command_parses_back_to_the_image():
    argv = shlex.split(next_steps("localhost:5000/mnist-cnn:1.10", built("MNIST CNN_v2"))[1])
    assert argv[:4] == ["helm", "install", "mnist-cnn-v2", HELM_CHART]
    # --set-string: a tag such as 1.10 must not turn into the number 1.1.
    assert argv[4:] == [
        "--set",
        "image.repository=localhost:5000/mnist-cnn",
        "--set-string",
        "image.tag=1.10",
    ]


@pytest.mark.parametrize(
    ("model_name", "repository", "release"),
    [
        ("mnist", "x", "mnist"),
        ("Fraud.Detector v2", "x", "fraud-detector-v2"),
        ("", "registry.example.com/team/churn", "churn"),
        ("__", "x", "model"),
        ("a" * 80, "x", "a" * 53),
        ("a" * 52 + "_b", "x", "a" * 52),
    ],
)
def test_release_name_is_a_dns_label(model_name, repository, release):
    name = helm_release_name(model_name, repository)
    assert name == release
    assert len(name) <= 53
    assert name[0].isalnum() and name[-1].isalnum()
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
