"""helm lint, kubernetes-validate and the values schema, all through the real binaries."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from .conftest import (
    CHART,
    CI_VALUES,
    KUBE_VERSIONS,
    RELEASE,
    kinds,
    only,
    run_helm,
    value_args,
)

VALUE_SETS = [pytest.param((), id="chart-defaults")] + [
    pytest.param((path,), id=path.stem) for path in CI_VALUES
]
# Not in kubernetes-validate's schemas (CRDs): checked by hand in test_service_monitor and
# test_kserve_objects_validate.
CRDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("serving.kserve.io/v1alpha1", "ServingRuntime"),
    ("serving.kserve.io/v1beta1", "InferenceService"),
}


def test_ci_value_files_cover_the_required_cases():
    assert {p.name for p in CI_VALUES} >= {
        "defaults-values.yaml",
        "full-values.yaml",
        "tfserving-values.yaml",
        "minimal-values.yaml",
    }


@pytest.mark.parametrize("values", VALUE_SETS)
def test_lint_strict(helm, values):
    result = run_helm(helm, "lint", "--strict", str(CHART), *value_args(values))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def validate(kubernetes_validate, path, version) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*kubernetes_validate, "--strict", "-k", version, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("values", VALUE_SETS)
def test_rendered_manifests_validate(render, kubernetes_validate, tmp_path, values, version):
    manifests = render(*values)
    checked = [m for m in manifests if (m["apiVersion"], m["kind"]) not in CRDS]
    skipped = [m for m in manifests if (m["apiVersion"], m["kind"]) in CRDS]
    assert all(m["kind"] in {kind for _, kind in CRDS} for m in skipped)
    path = tmp_path / "manifests.yaml"
    path.write_text(yaml.safe_dump_all(checked))
    result = validate(kubernetes_validate, path, version)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Every document was checked against a schema: none was let through with a warning.
    assert "WARN" not in output and "ERROR" not in output, output
    assert output.count(" passed for resource ") == len(checked), output


def test_kserve_objects_validate(render, kubernetes_validate, tmp_path):
    """KServe's CRDs are unknown to kubernetes-validate, but what they hold is core Kubernetes:
    the runtime's containers and volumes are validated as a Pod's, the rest by hand
    (tests/charts/test_manifests.py::test_kserve_mode_renders_a_runtime_and_an_inference_service)."""
    manifests = render(CHART / "ci" / "kserve-values.yaml")
    runtime = only(manifests, "ServingRuntime")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "kserve-runtime-as-a-pod", "namespace": "ml"},
        "spec": {
            "containers": runtime["spec"]["containers"],
            "volumes": runtime["spec"]["volumes"],
        },
    }
    path = tmp_path / "runtime-pod.yaml"
    path.write_text(yaml.safe_dump(pod))
    for version in KUBE_VERSIONS:
        result = validate(kubernetes_validate, path, version)
        assert result.returncode == 0, result.stdout + result.stderr
    # The InferenceService's predictor is KServe's own type: checked field by field there.
    assert set(only(manifests, "InferenceService")["spec"]) == {"predictor"}


@pytest.mark.parametrize(
    ("sets", "field", "message"),
    [
        (
            ["serving.follow.enabled=true", "serving.follow.modelUri=models:/mnist@champion"],
            "/registry/uri",
            "minLength: got 0, want 1",
        ),
        (
            [
                "serving.follow.enabled=true",
                "serving.follow.modelUri=models:/mnist/3",
                "registry.uri=http://mlreg:5000",
            ],
            "/serving/follow/modelUri",
            "does not match pattern",
        ),
        (["registry.uri=mlreg:5000"], "/registry/uri", "does not match pattern"),
        (["serving.grpcPort=0"], "/serving/grpcPort", "minimum: got 0, want 1"),
    ],
    ids=["follow-without-registry", "follow-a-fixed-version", "registry-not-a-url", "grpc-port"],
)
def test_schema_rejects_follow_mistakes_at_install(helm, sets, field, message):
    args = [a for s in sets for a in ("--set", s)]
    result = run_helm(helm, "install", RELEASE, str(CHART), "--dry-run=client", *args)
    assert result.returncode != 0
    assert f"at '{field}'" in result.stderr, result.stderr
    assert message in result.stderr, result.stderr


def test_validator_is_strict(kubernetes_validate, render, tmp_path):
    """The validation above means something: an unknown field in a pod spec is refused."""
    deployment = only(render(), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(deployment))
    result = validate(kubernetes_validate, path, KUBE_VERSIONS[0])
    assert result.returncode != 0
    assert "readinessprobe" in result.stdout + result.stderr


def test_service_monitor(render):
    """The one CRD: checked here by hand instead of by kubernetes-validate."""
    manifests = render(CHART / "ci" / "full-values.yaml")
    assert {"HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress", "NetworkPolicy"} <= kinds(
        manifests
    )
    monitor = only(manifests, "ServiceMonitor")
    service = only(manifests, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ml"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint == {
        "port": "http",
        "path": "/metrics",
        "interval": "15s",
        "scrapeTimeout": "5s",
    }
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}


@pytest.mark.parametrize(
    ("setting", "field", "message"),
    [
        ("replicaCount=two", "/replicaCount", "got string, want integer"),
        ("unknownKey=1", "''", "additional properties 'unknownKey' not allowed"),
        ("serving.port=-1", "/serving/port", "minimum: got -1, want 1"),
        ("service.port=70000", "/service/port", "maximum: got 70,000, want 65,535"),
        ("tfserving.modelVersion=0", "/tfserving/modelVersion", "minimum: got 0, want 1"),
        ("serving.logFormat=xml", "/serving/logFormat", "value must be one of"),
    ],
)
def test_schema_rejects_bad_values_at_install(helm, setting, field, message):
    result = run_helm(helm, "install", RELEASE, str(CHART), "--dry-run=client", "--set", setting)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert f"at {field}" in result.stderr or f"at '{field}'" in result.stderr, result.stderr
    assert message in result.stderr, result.stderr


def test_schema_rejects_ingress_without_hosts(helm):
    result = run_helm(helm, "lint", "--strict", str(CHART), "--set", "ingress.enabled=true")
    assert result.returncode != 0
    assert "at '/ingress/hosts': minItems: got 0, want 1" in result.stdout + result.stderr


def test_install_dry_run_prints_how_to_reach_invocations(helm):
    result = run_helm(
        helm,
        "install",
        RELEASE,
        str(CHART),
        "--dry-run=client",
        "--set",
        "image.repository=registry.example.com/mnist",
        "--set",
        "image.tag=3",
    )
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "registry.example.com/mnist:3" in notes
    assert "port-forward service/mnist-mlreg-serving 8080:80" in notes
    assert "http://127.0.0.1:8080/invocations" in notes
    assert f"helm test {RELEASE}" in notes
