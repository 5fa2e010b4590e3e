"""charts/mlreg-serving's registry mode: the pod resolves registry.modelUri from an mlreg
server at start-up (a token from a Secret), instead of serving the model baked into the image,
which stays the default."""

from __future__ import annotations

import base64

import pytest

from mlreg.serving.settings import ServingSettings

from .conftest import CHART, RELEASE, run_helm, value_args
from .test_manifests import DEFAULTS, IMAGE_ENV, chart_env, container, pod_env, pod_spec

REGISTRY = CHART / "ci" / "registry-values.yaml"


def test_the_image_baked_model_stays_the_default(render):
    env = pod_env(render(DEFAULTS))
    assert env["MLREG_MODEL_URI"] == IMAGE_ENV["MLREG_MODEL_URI"] == "/opt/mlreg/model"
    assert "MLREG_TRACKING_URI" not in env and "MLREG_TRACKING_TOKEN" not in env
    assert "Secret" not in {m["kind"] for m in render(DEFAULTS)}


def test_registry_mode_resolves_the_model_from_the_server(render):
    manifests = render(REGISTRY)
    env = pod_env(manifests)
    assert env["MLREG_TRACKING_URI"] == "http://mlreg-server.ml.svc:5000"
    assert env["MLREG_MODEL_URI"] == "models:/mnist@champion"
    mlreg = container(pod_spec(manifests), "mlreg")
    token = next(e for e in mlreg["env"] if e["name"] == "MLREG_TRACKING_TOKEN")
    # optional: an existing Secret may hold a user name and password instead
    assert token["valueFrom"]["secretKeyRef"] == {
        "name": "mnist-registry-token",
        "key": "token",
        "optional": True,
    }
    # What the serving process reads: the registry URI as its model.
    settings = ServingSettings.from_env(env)
    assert settings.model_uri == "models:/mnist@champion"
    assert "MLREG_TRACKING_TOKEN" not in chart_env(manifests)  # from the Secret, not plain


def test_a_token_given_as_a_value_goes_into_a_secret(render):
    manifests = render(
        REGISTRY,
        sets=["registry.existingSecret=", "registry.token=mlreg_abc", "registry.tokenKey=t"],
    )
    (secret,) = [m for m in manifests if m["kind"] == "Secret"]
    assert secret["metadata"]["name"] == f"{RELEASE}-mlreg-serving-registry"
    assert base64.b64decode(secret["data"]["t"]) == b"mlreg_abc"
    mlreg = container(pod_spec(manifests), "mlreg")
    token = next(e for e in mlreg["env"] if e["name"] == "MLREG_TRACKING_TOKEN")
    assert token["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]
    others = [m for m in manifests if m["kind"] != "Secret"]
    assert "mlreg_abc" not in str(others)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ["registry.uri=http://mlreg:5000"],
            "registry.uri is set: set registry.modelUri too (e.g. models:/mnist@champion)",
        ),
        (
            [
                "registry.uri=http://mlreg:5000",
                "registry.modelUri=models:/m/1",
                "tfserving.enabled=true",
            ],
            "registry.uri and tfserving.enabled do not go together",
        ),
        (["registry.modelUri=/opt/model"], "at '/registry/modelUri': '/opt/model' does not match"),
    ],
    ids=["no-model", "tfserving", "not-a-models-uri"],
)
def test_registry_mode_refuses_what_cannot_work(helm, sets, message):
    result = run_helm(helm, "template", RELEASE, str(CHART), *value_args((), sets))
    assert result.returncode != 0 and message in result.stderr
