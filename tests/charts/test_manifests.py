"""What the chart renders: probes, security, settings, shutdown and the TF Serving sidecar."""

from __future__ import annotations

import dataclasses
import math

import pytest

from mlreg.serving.settings import ServingSettings, env_var
from mlreg.store.settings import StoreSettings

from .conftest import CHART, RELEASE, kinds, only, run_helm, value_args

DEFAULTS = CHART / "ci" / "defaults-values.yaml"
FULL = CHART / "ci" / "full-values.yaml"
TFSERVING = CHART / "ci" / "tfserving-values.yaml"
MINIMAL = CHART / "ci" / "minimal-values.yaml"
FOLLOW = CHART / "ci" / "follow-values.yaml"
KSERVE = CHART / "ci" / "kserve-values.yaml"
ALL = [DEFAULTS, FULL, TFSERVING, MINIMAL, FOLLOW]
# What `mlreg build-docker`'s Dockerfile sets; the pod's environment starts from it.
IMAGE_ENV = {
    "MLREG_MODEL_URI": "/opt/mlreg/model",
    "MLREG_HOST": "0.0.0.0",
    "MLREG_PORT": "8080",
    "MLREG_HOME": "/opt/mlreg/work/.mlreg",
    "HOME": "/opt/mlreg/work",
}
SETTINGS_VARS = {env_var(f.name): f.name for f in dataclasses.fields(ServingSettings)}
# MLREG_* variables of the image (or the chart) that are not serving settings: where the
# registry is and who asks it (read by mlreg.store and the REST client).
NON_SETTINGS_VARS = {
    "MLREG_HOME",
    "MLREG_TRACKING_URI",
    "MLREG_TRACKING_TOKEN",
    "MLREG_TRACKING_USERNAME",
    "MLREG_TRACKING_PASSWORD",
}


def pod_spec(manifests):
    return only(manifests, "Deployment")["spec"]["template"]["spec"]


def container(spec, name, kind="containers"):
    (found,) = [c for c in spec.get(kind, []) if c["name"] == name]
    return found


def chart_env(manifests) -> dict[str, str]:
    """The variables the chart gives the mlreg container: ConfigMap (envFrom), then env."""
    mlreg = container(pod_spec(manifests), "mlreg")
    env: dict[str, str] = {}
    for source in mlreg["envFrom"]:
        name = source["configMapRef"]["name"]
        (config,) = [
            m for m in manifests if m["kind"] == "ConfigMap" and m["metadata"]["name"] == name
        ]
        env.update(config["data"])
    env.update({e["name"]: e["value"] for e in mlreg.get("env", []) if "value" in e})
    return env


def secret_env(manifests) -> dict[str, dict]:
    """The variables the mlreg container takes from Secrets: name -> secretKeyRef."""
    mlreg = container(pod_spec(manifests), "mlreg")
    return {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in mlreg.get("env", []) if "valueFrom" in e
    }


def pod_env(manifests) -> dict[str, str]:
    return {**IMAGE_ENV, **chart_env(manifests)}


@pytest.mark.parametrize("values", ALL, ids=lambda p: p.stem)
def test_probes_hit_the_real_endpoints_on_the_settings_port(render, values):
    manifests = render(values)
    mlreg = container(pod_spec(manifests), "mlreg")
    port, *grpc = mlreg["ports"]
    assert port["name"] == "http"
    assert [p["name"] for p in grpc] == (["grpc-v2"] if values == FOLLOW else [])
    assert str(port["containerPort"]) == chart_env(manifests)["MLREG_PORT"]
    assert ServingSettings.from_env(pod_env(manifests)).port == port["containerPort"]
    for probe, path in [("startupProbe", "/ping"), ("readinessProbe", "/ping")]:
        assert mlreg[probe]["httpGet"] == {"path": path, "port": "http"}
    assert mlreg["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    startup = mlreg["startupProbe"]
    # TensorFlow's model load and warm-up: minutes, not the default 30 s.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
    service = only(manifests, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_port_value_moves_container_port_and_setting_together(render):
    manifests = render(FULL)
    mlreg = container(pod_spec(manifests), "mlreg")
    assert mlreg["ports"][0]["containerPort"] == 9090
    assert chart_env(manifests)["MLREG_PORT"] == "9090"


RESTRICTED = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 0,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.mark.parametrize("values", ALL, ids=lambda p: p.stem)
def test_security_context_is_complete(render, values):
    manifests = render(values)
    spec = pod_spec(manifests)
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 0,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    pods = [spec, only(manifests, "Pod")["spec"]]  # the Deployment's and the helm test pod
    for pod in pods:
        for c in pod["containers"] + pod.get("initContainers", []):
            assert c["securityContext"] == RESTRICTED, c["name"]
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"], c["name"]
    # Read-only root: everything the server writes goes to emptyDirs.
    mounts = {m["mountPath"]: m["name"] for m in container(spec, "mlreg")["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    for path in ("/tmp", "/opt/mlreg/work"):
        assert "emptyDir" in volumes[mounts[path]], path
    assert IMAGE_ENV["HOME"] == "/opt/mlreg/work"


def test_service_account_token_is_not_mounted(render):
    account = only(render(DEFAULTS), "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    assert pod_spec(render(DEFAULTS))["serviceAccountName"] == account["metadata"]["name"]
    assert "ServiceAccount" not in kinds(render(MINIMAL))
    assert pod_spec(render(MINIMAL))["serviceAccountName"] == "default"


@pytest.mark.parametrize("values", ALL, ids=lambda p: p.stem)
def test_every_mlreg_variable_is_a_serving_setting_that_validates(render, values):
    manifests = render(values)
    env = chart_env(manifests)
    mlreg_vars = {name for name in env if name.startswith("MLREG_")}
    assert mlreg_vars - NON_SETTINGS_VARS <= set(SETTINGS_VARS), mlreg_vars - set(SETTINGS_VARS)
    # Every setting in values.serving reaches the pod.
    for field in ("port", "workers", "threads", "timeout", "graceful_timeout", "log_format"):
        assert env_var(field) in env
    settings = ServingSettings.from_env(pod_env(manifests))
    assert settings.host == "0.0.0.0"
    # The model baked into the image, unless the pods follow a registry URI.
    baked = settings.model_uri == "/opt/mlreg/model"
    assert baked if values != FOLLOW else settings.model_uri.startswith("models:/")
    assert ServingSettings.from_env(env).port == settings.port  # the chart alone sets the port


def test_default_settings_serve_the_model_in_process(render):
    settings = ServingSettings.from_env(pod_env(render(DEFAULTS)))
    assert settings.backend == "local"
    assert settings.tfserving_target is None
    assert (settings.workers, settings.threads, settings.log_format) == (2, 4, "json")
    assert settings.xla_max_batch == 0


def test_full_values_reach_the_settings(render):
    settings = ServingSettings.from_env(pod_env(render(FULL)))
    assert settings.workers == 4
    assert settings.graceful_timeout == 20.5
    assert settings.max_request_bytes == 10 * 1024 * 1024
    assert (settings.log_format, settings.log_level) == ("text", "warning")
    assert (settings.batch_max_size, settings.batch_timeout_ms) == (16, 5.0)
    assert settings.xla_max_batch == 2


def test_xla_with_the_tfserving_sidecar_is_refused(helm):
    result = run_helm(
        helm, "template", RELEASE, str(CHART), *value_args([TFSERVING], ["serving.xlaMaxBatch=1"])
    )
    assert result.returncode != 0
    assert "serving.xlaMaxBatch and tfserving.enabled do not go together" in result.stderr


def test_large_numbers_render_without_exponent(render, tmp_path):
    """Values files give Helm float64s, which Go prints as 1e+09; int("1e+09") fails."""
    values = tmp_path / "big.yaml"
    values.write_text("serving:\n  maxRequestBytes: 1000000000\n  timeout: 10000000\n")
    env = chart_env(render(DEFAULTS, values))
    assert env["MLREG_MAX_REQUEST_BYTES"] == "1000000000"
    assert env["MLREG_TIMEOUT"] == "10000000"
    assert ServingSettings.from_env(env).max_request_bytes == 10**9


@pytest.mark.parametrize("values", ALL, ids=lambda p: p.stem)
def test_termination_grace_covers_prestop_and_graceful_shutdown(render, values):
    manifests = render(values)
    spec = pod_spec(manifests)
    mlreg = container(spec, "mlreg")
    pre_stop = mlreg["lifecycle"]["preStop"]["sleep"]["seconds"]
    graceful = ServingSettings.from_env(pod_env(manifests)).graceful_timeout
    assert pre_stop > 0
    assert spec["terminationGracePeriodSeconds"] >= pre_stop + graceful
    # gunicorn rounds its graceful timeout up; the margin must survive that.
    assert spec["terminationGracePeriodSeconds"] > pre_stop + math.ceil(graceful)
    strategy = only(manifests, "Deployment")["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_grace_follows_the_graceful_timeout(render):
    spec = pod_spec(render(DEFAULTS, sets=["serving.gracefulTimeout=120"]))
    assert spec["terminationGracePeriodSeconds"] == 10 + 120 + 5


def test_checksum_rolls_pods_on_settings_change_only(render):
    def checksum(*sets):
        template = only(render(DEFAULTS, sets=sets), "Deployment")["spec"]["template"]
        return template["metadata"]["annotations"]["checksum/config"]

    base = checksum()
    assert len(base) == 64
    assert checksum("serving.workers=3") != base
    assert checksum("serving.logLevel=debug") != base
    assert checksum("tfserving.enabled=true") != base
    assert checksum("replicaCount=5") == base  # not a setting: no roll


def test_tfserving_batching_change_rolls_pods(render):
    def checksum(*sets):
        template = only(render(TFSERVING, sets=sets), "Deployment")["spec"]["template"]
        return template["metadata"]["annotations"]["checksum/tfserving-config"]

    assert checksum("tfserving.batching.maxBatchSize=8") != checksum()


@pytest.mark.parametrize("values", [DEFAULTS, FULL, MINIMAL], ids=lambda p: p.stem)
def test_no_sidecar_unless_enabled(render, values):
    spec = pod_spec(render(values))
    assert [c["name"] for c in spec["containers"]] == ["mlreg"]
    assert "initContainers" not in spec
    assert "models" not in {v["name"] for v in spec["volumes"]}


def test_tfserving_sidecar_serves_what_the_init_container_copies(render):
    manifests = render(TFSERVING)
    spec = pod_spec(manifests)
    assert [c["name"] for c in spec["containers"]] == ["mlreg", "tfserving"]
    (init,) = spec["initContainers"]
    tfs = container(spec, "tfserving")
    mlreg = container(spec, "mlreg")

    # The init container runs the model image and copies its export, with no shell.
    assert init["image"] == mlreg["image"] == "registry.example.com/mnist:3"
    assert init["command"] == ["cp", "-R", "-T", "/opt/mlreg/model/tfserving/1", "/models/mnist/3"]
    *_, destination = init["command"]
    base, version = destination.rsplit("/", 1)
    assert version.isdigit()

    args = dict(arg.removeprefix("--").split("=", 1) for arg in tfs["args"])
    assert tfs["command"] == ["tensorflow_model_server"]
    assert tfs["image"].startswith("tensorflow/serving:")
    assert args["port"] == "8500"
    assert args["rest_api_port"] == "0"
    assert args["model_name"] == "mnist"
    assert args["model_base_path"] == base == f"/models/{args['model_name']}"
    assert args["tensorflow_intra_op_parallelism"] == "2"  # extraArgs

    # Both mount the same emptyDir at the base path.
    def mount(c, path):
        (found,) = [m for m in c["volumeMounts"] if m["mountPath"] == path]
        return found["name"]

    volumes = {v["name"]: v for v in spec["volumes"]}
    assert mount(init, base) == mount(tfs, base) == "models"
    assert "emptyDir" in volumes["models"]
    assert all(m["name"] != "models" for m in mlreg["volumeMounts"])

    # TF Serving: probed on its gRPC port, bounded, non-root, and outlives mlreg's drain.
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert tfs[probe]["tcpSocket"] == {"port": "grpc"}
    assert {p["name"]: p["containerPort"] for p in tfs["ports"]} == {"grpc": 8500}
    assert tfs["resources"]["limits"]["memory"]
    assert tfs["securityContext"]["runAsNonRoot"] is True
    assert tfs["securityContext"]["readOnlyRootFilesystem"] is True
    mlreg_stop = mlreg["lifecycle"]["preStop"]["sleep"]["seconds"]
    tfs_stop = tfs["lifecycle"]["preStop"]["sleep"]["seconds"]
    graceful = ServingSettings.from_env(pod_env(manifests)).graceful_timeout
    assert tfs_stop >= mlreg_stop + graceful
    assert spec["terminationGracePeriodSeconds"] > tfs_stop


def test_tfserving_settings_point_mlreg_at_the_sidecar(render):
    manifests = render(TFSERVING)
    settings = ServingSettings.from_env(pod_env(manifests))
    assert settings.backend == "tfserving"
    assert settings.tfserving_target == "localhost:8500"
    assert settings.tfserving_model_name == "mnist"
    assert settings.tfserving_model_version == 3
    assert settings.tfserving_signature == "serving_default"
    assert settings.tfserving_version_label is None


def test_tfserving_batching_parameters(render):
    manifests = render(TFSERVING)
    spec = pod_spec(manifests)
    tfs = container(spec, "tfserving")
    assert "--enable_batching=true" in tfs["args"]
    (file_arg,) = [a for a in tfs["args"] if a.startswith("--batching_parameters_file=")]
    path = file_arg.split("=", 1)[1]
    directory, filename = path.rsplit("/", 1)
    (mount,) = [m for m in tfs["volumeMounts"] if m["mountPath"] == directory]
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    (config,) = [
        m
        for m in manifests
        if m["kind"] == "ConfigMap" and m["metadata"]["name"] == volume["configMap"]["name"]
    ]
    assert config["data"][filename].splitlines() == [
        "max_batch_size { value: 64 }",
        "batch_timeout_micros { value: 2000 }",
        "num_batch_threads { value: 2 }",
        "max_enqueued_batches { value: 50 }",
    ]
    unbatched = container(
        pod_spec(render(TFSERVING, sets=["tfserving.batching.enabled=false"])), "tfserving"
    )
    assert not any("batching" in a for a in unbatched["args"])


def test_labels_and_selectors(render):
    manifests = render(FULL)
    for m in manifests:
        labels = m["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "mlreg-serving"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == "mlreg-serving-0.2.0"
    deployment = only(manifests, "Deployment")
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert only(manifests, "Service")["spec"]["selector"] == selector
    assert only(manifests, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    assert only(manifests, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"] == selector
    # The helm test pod carries the release's labels but is no Service endpoint.
    test_pod = only(manifests, "Pod")
    assert not selector.items() <= test_pod["metadata"]["labels"].items()


def test_helm_test_pod_pings_the_service(render):
    manifests = render(DEFAULTS)
    pod = only(manifests, "Pod")
    service = only(manifests, "Service")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    (c,) = pod["spec"]["containers"]
    name, port = service["metadata"]["name"], service["spec"]["ports"][0]["port"]
    assert c["command"][-1] == f"http://{name}:{port}/ping"
    assert c["command"][0] == "python"


def test_network_policy_admits_the_helm_test_pod(render):
    manifests = render(FULL)
    policy = only(manifests, "NetworkPolicy")
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    test_labels = only(manifests, "Pod")["metadata"]["labels"]
    pod_selectors = [p["podSelector"]["matchLabels"] for p in rule["from"] if "podSelector" in p]
    assert any(sel.items() <= test_labels.items() for sel in pod_selectors)
    assert len(rule["from"]) == 3  # the test pod and the two namespaces of full-values.yaml


def test_autoscaler_and_replicas(render):
    full = render(FULL)
    hpa = only(full, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == only(full, "Deployment")["metadata"]["name"]
    metric_types = [m["type"] for m in hpa["spec"]["metrics"]]
    assert metric_types == ["Resource", "Pods"]
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    assert "replicas" not in only(full, "Deployment")["spec"]
    assert only(render(MINIMAL), "Deployment")["spec"]["replicas"] == 1
    assert "HorizontalPodAutoscaler" not in kinds(render(DEFAULTS))


def test_anti_affinity_preset(render):
    soft = pod_spec(render(DEFAULTS))["affinity"]["podAntiAffinity"]
    (term,) = soft["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    hard = pod_spec(render(FULL))["affinity"]["podAntiAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" in hard
    assert "affinity" not in pod_spec(render(MINIMAL))


def test_image_digest_wins_over_tag(render):
    assert container(pod_spec(render(FULL)), "mlreg")["image"] == (
        "registry.example.com/mnist@sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    )


def test_optional_objects_only_when_enabled(render):
    assert kinds(render(DEFAULTS)) == {
        "ConfigMap",
        "Deployment",
        "Pod",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    }
    ingress = only(render(FULL), "Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "mnist.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"]["port"] == {"name": "http"}


# --- follow mode, the V2 gRPC port, KServe -------------------------------------------------


def test_body_limit_is_derived_unless_set(render):
    env = chart_env(render(DEFAULTS))
    assert "MLREG_MAX_REQUEST_BYTES" not in env  # from the model's signature
    assert ServingSettings.from_env(pod_env(render(DEFAULTS))).read_timeout == 30.0
    assert chart_env(render(FULL))["MLREG_MAX_REQUEST_BYTES"] == "10485760"


def test_follow_values_reach_the_settings_and_the_registry_client(render):
    manifests = render(FOLLOW)
    env = pod_env(manifests)
    settings = ServingSettings.from_env(env)
    assert settings.follow is True
    assert settings.model_uri == "models:/mnist@champion"  # replaces the image's baked model
    assert settings.poll_interval == 15.0
    assert settings.allow_signature_change is False
    assert settings.grpc_port == 8081
    assert (settings.log_predictions, settings.log_sample_rate) == (
        "http://collector.observability:8080/events",
        0.1,
    )
    store = StoreSettings.from_env(env)
    assert store.remote and store.uri == "http://mlreg-server.mlreg:5000"
    # Credentials only from the Secret, each key optional (a token, or a user and password).
    assert secret_env(manifests) == {
        "MLREG_TRACKING_TOKEN": {"name": "mlreg-registry", "key": "token", "optional": True},
        "MLREG_TRACKING_USERNAME": {
            "name": "mlreg-registry",
            "key": "username",
            "optional": True,
        },
        "MLREG_TRACKING_PASSWORD": {
            "name": "mlreg-registry",
            "key": "password",
            "optional": True,
        },
    }
    assert not any("TOKEN" in k or "PASSWORD" in k for k in chart_env(manifests))


def test_grpc_port_is_on_the_container_and_the_service(render):
    manifests = render(FOLLOW)
    ports = {p["name"]: p for p in container(pod_spec(manifests), "mlreg")["ports"]}
    assert ports["grpc-v2"]["containerPort"] == 8081
    service_ports = {p["name"]: p for p in only(manifests, "Service")["spec"]["ports"]}
    assert service_ports["grpc-v2"] == {
        "name": "grpc-v2",
        "port": 8081,
        "targetPort": "grpc-v2",
        "protocol": "TCP",
        "appProtocol": "grpc",
    }
    assert "grpc-v2" not in {p["name"] for p in only(render(DEFAULTS), "Service")["spec"]["ports"]}


def test_kserve_mode_renders_a_runtime_and_an_inference_service(render):
    manifests = render(KSERVE)
    assert kinds(manifests) == {"ServiceAccount", "ConfigMap", "ServingRuntime", "InferenceService"}
    runtime = only(manifests, "ServingRuntime")
    service = only(manifests, "InferenceService")
    assert runtime["apiVersion"] == "serving.kserve.io/v1alpha1"
    assert service["apiVersion"] == "serving.kserve.io/v1beta1"
    spec = runtime["spec"]
    assert set(spec) == {
        "annotations",
        "supportedModelFormats",
        "protocolVersions",
        "containers",
        "volumes",
    }
    assert spec["protocolVersions"] == ["v2", "v1"]
    [fmt] = spec["supportedModelFormats"]
    assert fmt == {"name": "mlreg", "version": "1", "autoSelect": True}
    [server] = spec["containers"]
    assert server["name"] == "kserve-container"  # the name KServe looks for
    assert server["image"] == "registry.example.com/mnist:3"
    assert server["command"] == ["mlreg", "serve"]
    # KServe puts the InferenceService's name there: the name V2 URLs use.
    assert server["args"] == ["--model-name={{.Name}}"]
    [port] = server["ports"]
    settings = ServingSettings.from_env(
        {**IMAGE_ENV, **only(manifests, "ConfigMap")["data"], "MLREG_MODEL_NAME": "mnist"}
    )
    assert port["containerPort"] == settings.port == 8080
    assert server["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert server["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8080}
    assert server["envFrom"] == [
        {"configMapRef": {"name": only(manifests, "ConfigMap")["metadata"]["name"]}}
    ]
    assert settings.follow and settings.model_uri == "models:/mnist@champion"
    mounts = {m["name"] for m in server["volumeMounts"]}
    assert mounts == {v["name"] for v in spec["volumes"]} == {"tmp", "work"}
    predictor = service["spec"]["predictor"]
    assert service["metadata"]["name"] == "mnist"
    assert service["metadata"]["annotations"] == {
        "serving.kserve.io/deploymentMode": "RawDeployment"
    }
    assert predictor["model"] == {
        "runtime": runtime["metadata"]["name"],
        "protocolVersion": "v2",
        "modelFormat": {"name": fmt["name"]},
    }
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 4)
    assert predictor["serviceAccountName"] == only(manifests, "ServiceAccount")["metadata"]["name"]
