"""charts/mlreg-server through the real helm and kubernetes-validate: lint, schema, what it
renders (the migration hook, probes, security, Secrets, settings mlreg really reads), and its
refusals."""

from __future__ import annotations

import base64
import dataclasses

import pytest
import yaml

from mlreg.server.settings import ServerSettings
from mlreg.store.settings import ARTIFACT_ROOT_VAR, HOME_VAR, S3_ENDPOINT_VAR, URI_VARS

from .conftest import (
    KUBE_VERSIONS,
    RELEASE,
    SERVER_CHART,
    SERVER_VALUES,
    kinds,
    only,
    run_helm,
    value_args,
)
from .test_helm import CRDS, validate

CI = {p.stem: p for p in SERVER_VALUES}
MINIMAL, FULL, DEFAULTS = CI["minimal-values"], CI["full-values"], CI["defaults-values"]
INLINE = CI["values-secrets-values"]
FULLNAME = f"{RELEASE}-mlreg-server"
SETTINGS = {f"MLREG_{f.name.upper()}" for f in dataclasses.fields(ServerSettings)}
STORE_VARS = {*URI_VARS, ARTIFACT_ROOT_VAR, HOME_VAR, S3_ENDPOINT_VAR}
#: What a Secret gives the pod, for building its settings here.
SECRET_STANDINS = {
    "MLREG_TRACKING_URI": "postgresql+psycopg://mlreg:x@db:5432/mlreg",
    "MLREG_ADMIN_PASSWORD": "from-a-secret",
    "MLREG_SECRET_KEY": "a-random-key-from-a-secret",
    "AWS_ACCESS_KEY_ID": "key",
    "AWS_SECRET_ACCESS_KEY": "secret",
}


def test_ci_value_files_cover_the_cases():
    assert set(CI) >= {"minimal-values", "defaults-values", "full-values", "values-secrets-values"}


@pytest.mark.parametrize("values", SERVER_VALUES, ids=lambda p: p.stem)
def test_lint_strict(helm, values):
    result = run_helm(helm, "lint", "--strict", str(SERVER_CHART), *value_args([values]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("values", SERVER_VALUES, ids=lambda p: p.stem)
def test_rendered_manifests_validate(render_server, kubernetes_validate, tmp_path, values, version):
    manifests = render_server(values)
    checked = [m for m in manifests if (m["apiVersion"], m["kind"]) not in CRDS]
    path = tmp_path / "manifests.yaml"
    path.write_text(yaml.safe_dump_all(checked))
    result = validate(kubernetes_validate, path, version)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARN" not in output and "ERROR" not in output, output
    assert output.count(" passed for resource ") == len(checked), output


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            [],
            "set database.existingSecret (a Secret with the database URI under database.uriKey) "
            "or database.uri",
        ),
        (
            ["database.existingSecret=db", "persistence.accessModes[0]=ReadWriteOnce"],
            "artifacts on a volume with more than one replica need persistence.accessModes "
            "[ReadWriteMany] (or artifacts.root: s3://..., or replicaCount: 1)",
        ),
        (
            ["database.existingSecret=db", "artifacts.s3.accessKeyId=AKIA"],
            "artifacts.s3.accessKeyId is set: set artifacts.s3.secretAccessKey too",
        ),
        (
            ["database.existingSecret=db", "server.defaultPermission=ADMIN"],
            "at '/server/defaultPermission': value must be one of 'NONE', 'READ', 'EDIT', "
            "'PROMOTE', 'MANAGE'",
        ),
        (
            ["database.existingSecret=db", "artifacts.root=/data"],
            "at '/artifacts/root': '/data' does not match pattern",
        ),
    ],
    ids=["no-database", "rwo-with-replicas", "half-s3-keys", "admin-is-not-a-default", "root"],
)
def test_what_cannot_work_is_refused_with_a_message(helm, sets, message):
    result = run_helm(helm, "template", RELEASE, str(SERVER_CHART), *value_args((), sets))
    assert result.returncode != 0
    assert message in result.stderr


def _pod(manifests):
    return only(manifests, "Deployment")["spec"]["template"]["spec"]


def _container(spec, name):
    (found,) = [c for c in spec["containers"] if c["name"] == name]
    return found


def _env(manifests) -> tuple[dict[str, str], dict[str, dict]]:
    """The server container's plain variables (ConfigMap, then env) and its Secret refs."""
    server = _container(_pod(manifests), "mlreg")
    plain: dict[str, str] = {}
    for source in server["envFrom"]:
        name = source["configMapRef"]["name"]
        (config,) = [
            m for m in manifests if m["kind"] == "ConfigMap" and m["metadata"]["name"] == name
        ]
        plain.update(config["data"])
    refs = {}
    for entry in server["env"]:
        if "valueFrom" in entry:
            refs[entry["name"]] = entry["valueFrom"]["secretKeyRef"]
        else:
            plain[entry["name"]] = entry["value"]
    return plain, refs


@pytest.mark.parametrize("values", SERVER_VALUES, ids=lambda p: p.stem)
def test_the_pod_environment_is_settings_mlreg_reads(render_server, values):
    """Every MLREG_ variable is a setting of the server (no typo goes unnoticed), and together
    they make valid ServerSettings: listening on 0.0.0.0 is allowed (auth, or said)."""
    plain, refs = _env(render_server(values))
    unknown = {k for k in {*plain, *refs} if k.startswith("MLREG_")} - SETTINGS - STORE_VARS
    assert unknown == set()
    env = {**plain, **{k: SECRET_STANDINS[k] for k in refs}}
    settings = ServerSettings.from_env(env)
    assert (settings.host, settings.port) == ("0.0.0.0", 5000)
    assert settings.auth or settings.allow_unauthenticated
    assert settings.store.uri == SECRET_STANDINS["MLREG_TRACKING_URI"]


def test_secrets_come_from_secrets_never_from_the_configmap(render_server):
    manifests = render_server(FULL)
    plain, refs = _env(manifests)
    assert refs == {
        "MLREG_TRACKING_URI": {"name": "mlreg-database", "key": "postgres-uri"},
        "AWS_ACCESS_KEY_ID": {"name": "mlreg-s3", "key": "AWS_ACCESS_KEY_ID"},
        "AWS_SECRET_ACCESS_KEY": {"name": "mlreg-s3", "key": "AWS_SECRET_ACCESS_KEY"},
        "MLREG_ADMIN_PASSWORD": {"name": "mlreg-admin", "key": "password"},
        "MLREG_SECRET_KEY": {"name": "mlreg-ui", "key": "key"},
    }
    assert "Secret" not in kinds(manifests)  # every one of them existed already
    assert plain["MLREG_ARTIFACT_ROOT"] == "s3://models/mlreg"
    assert plain["MLREG_S3_ENDPOINT_URL"] == "http://minio.storage.svc:9000"
    assert (plain["MLREG_AUTH"], plain["MLREG_ADMIN_USER"]) == ("1", "root")
    assert "PersistentVolumeClaim" not in kinds(manifests)


def test_secrets_given_as_values_go_into_one_hook_secret(render_server):
    manifests = render_server(INLINE)
    secret = only(manifests, "Secret")
    assert secret["metadata"]["name"] == f"{FULLNAME}-secrets"
    uri = "postgresql+psycopg://mlreg:change-me@postgres.ml.svc:5432/mlreg"
    assert base64.b64decode(secret["data"]["uri"]).decode() == uri
    annotations = secret["metadata"]["annotations"]
    job = only(manifests, "Job")["metadata"]["annotations"]
    # Made before the migration Job (a hook too) that reads it.
    assert annotations["helm.sh/hook"] == job["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(annotations["helm.sh/hook-weight"]) < int(job["helm.sh/hook-weight"])
    text = yaml.safe_dump_all([m for m in manifests if m["kind"] != "Secret"])
    assert "change-me" not in text
    plain, refs = _env(manifests)
    assert refs == {
        "MLREG_TRACKING_URI": {"name": f"{FULLNAME}-secrets", "key": "uri"},
        "MLREG_SECRET_KEY": {"name": f"{FULLNAME}-secrets", "key": "secret-key"},
    }
    # No authentication: said explicitly, or the server would refuse to listen.
    assert (plain["MLREG_AUTH"], plain["MLREG_ALLOW_UNAUTHENTICATED"]) == ("0", "1")


def test_every_replica_signs_the_web_ui_with_one_key(render_server, helm):
    """MLREG_SECRET_KEY comes from one Secret for all pods (each pod making its own would
    refuse the sign-ins and forms of the others): a random one the chart makes, or the one
    given; a short one is refused."""
    _, refs = _env(render_server(DEFAULTS))
    assert refs["MLREG_SECRET_KEY"] == {"name": f"{FULLNAME}-secrets", "key": "secret-key"}
    keys = []
    for _ in range(2):  # not the cached render: two installs
        result = run_helm(helm, "template", RELEASE, str(SERVER_CHART), *value_args([DEFAULTS]))
        manifests = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        keys.append(base64.b64decode(only(manifests, "Secret")["data"]["secret-key"]).decode())
    assert all(len(k) == 48 and k.isalnum() for k in keys) and keys[0] != keys[1]
    given = render_server(DEFAULTS, sets=["ui.secretKey=given-key-of-some-length"])
    encoded = only(given, "Secret")["data"]["secret-key"]
    assert base64.b64decode(encoded).decode() == "given-key-of-some-length"
    short = run_helm(
        helm, "template", RELEASE, str(SERVER_CHART), *value_args([DEFAULTS], ["ui.secretKey=x"])
    )
    assert short.returncode != 0 and "at '/ui/secretKey'" in short.stderr


def test_the_migration_job_upgrades_the_schema_before_install_and_upgrade(render_server):
    manifests = render_server(MINIMAL)
    job = only(manifests, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["mlreg", "db", "upgrade"]
    uri = next(e for e in container["env"] if e["name"] == "MLREG_TRACKING_URI")
    assert uri["valueFrom"]["secretKeyRef"] == {"name": "mlreg-database", "key": "uri"}
    assert pod["restartPolicy"] == "Never"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    off = render_server(MINIMAL, sets=["migrations.enabled=false"])
    assert "Job" not in kinds(off)


@pytest.mark.parametrize("values", SERVER_VALUES, ids=lambda p: p.stem)
def test_probes_security_and_shutdown(render_server, values):
    manifests = render_server(values)
    pod = _pod(manifests)
    server = _container(pod, "mlreg")
    assert server["command"] == ["mlreg", "server"]
    assert server["ports"] == [{"name": "http", "containerPort": 5000, "protocol": "TCP"}]
    assert server["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert server["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert server["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    security = server["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
    mounts = {m["mountPath"] for m in server["volumeMounts"]}
    assert {"/tmp", "/var/lib/mlreg"} <= mounts
    assert pod["terminationGracePeriodSeconds"] == 10 + 30 + 5
    test_pod = next(
        m for m in manifests if m["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
    )
    assert test_pod["spec"]["containers"][0]["command"][-1] == f"http://{FULLNAME}:5000/ready"


def test_hosts_the_server_answers_to(render_server):
    plain, _ = _env(render_server(FULL))
    assert plain["MLREG_ALLOWED_HOSTS"].split(",") == [
        FULLNAME,
        f"{FULLNAME}.ml",
        f"{FULLNAME}.ml.svc",
        f"{FULLNAME}.ml.svc.cluster.local",
        "mlreg.example.com",
        "mlreg.internal",
    ]
    assert plain["MLREG_PROXY_HOPS"] == "1"
    assert plain["MLREG_CORS_ORIGINS"] == "https://ui.example.com"


def test_artifacts_on_a_volume_get_a_kept_claim(render_server):
    manifests = render_server(MINIMAL)
    claim = only(manifests, "PersistentVolumeClaim")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    server = _container(_pod(manifests), "mlreg")
    assert {"name": "artifacts", "mountPath": "/var/lib/mlreg/artifacts"} in server["volumeMounts"]
    plain, _ = _env(manifests)
    assert plain["MLREG_ARTIFACT_ROOT"] == "/var/lib/mlreg/artifacts"


def test_optional_resources(render_server):
    assert {"HorizontalPodAutoscaler", "Ingress", "NetworkPolicy", "ServiceMonitor"} <= kinds(
        render_server(FULL)
    )
    minimal = kinds(render_server(MINIMAL))
    assert not {"HorizontalPodAutoscaler", "Ingress", "NetworkPolicy", "ServiceMonitor"} & minimal
    assert {
        "Deployment",
        "Service",
        "ServiceAccount",
        "PodDisruptionBudget",
        "ConfigMap",
    } <= minimal
    deployment = only(render_server(FULL), "Deployment")
    assert "replicas" not in deployment["spec"]  # the HPA decides


def test_install_dry_run_runs_the_migration_first_and_says_how_to_sign_in(helm):
    """``helm install`` (client-side dry run: no cluster here) puts the migration Job among
    the pre-install hooks, before any manifest, and its notes say how to sign in."""
    result = run_helm(
        helm,
        "install",
        "team",
        str(SERVER_CHART),
        "--dry-run=client",
        "--namespace",
        "ml",
        *value_args([MINIMAL], ["auth.enabled=true", "auth.existingSecret=mlreg-admin"]),
    )
    assert result.returncode == 0, result.stderr
    hooks, _, rest = result.stdout.partition("MANIFEST:")
    manifest, _, notes = rest.partition("NOTES:")
    assert "# Source: mlreg-server/templates/migrate-job.yaml" in hooks
    assert "helm.sh/hook: pre-install,pre-upgrade" in hooks
    assert "kind: Job" not in manifest  # the migration runs only as the hook
    assert "kind: Deployment" in manifest
    assert "(users and tokens; artifacts in a PersistentVolumeClaim)" in notes
    assert "export MLREG_TRACKING_URI=http://team-mlreg-server.ml.svc:5000" in notes
    assert "Sign in as the first admin (admin, password from the Secret mlreg-admin)" in notes
    assert "helm test team --namespace ml" in notes
