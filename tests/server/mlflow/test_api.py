"""MLflow's REST API on mlreg server, request by request (the real app in-process, SQLite and
local files; no mlflow package needed): the route table, MLflow's error codes and statuses,
the 501s, the artifact proxy and its multipart uploads, and versions registered from what the
server holds. The stock client against a real server is tests/server/mlflow/test_compat.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from mlreg.registry.artifacts import dir_digest
from mlreg.server.app import create_app
from mlreg.server.mlflow import meta
from mlreg.server.mlflow.table import PREFIXES, mlflow_api
from mlreg.server.permissions import Level
from mlreg.server.settings import ServerSettings
from mlreg.store import StoreSettings
from tests.conftest import make_model_dir

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts"


@pytest.fixture
def app(tmp_path):
    settings = ServerSettings(
        store=StoreSettings.for_home(tmp_path / "home", "server"), max_request_bytes=1 << 20
    )
    app = create_app(settings)
    yield app
    app.extensions["mlreg.server"].close()


@pytest.fixture
def web(app):
    return app.test_client()


@pytest.fixture
def services(app):
    return app.extensions["mlreg.server"]


def call(web, method: str, path: str, body: Any = None, status: int = 200, **kwargs: Any) -> Any:
    """One request; asserts the status and returns the JSON answer."""
    if method == "GET" and body is not None:
        response = web.get(path, query_string=body, **kwargs)
    else:
        response = web.open(path, method=method, json=body, **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json(silent=True)


def run_in(web, experiment_id: str = "0", **fields: Any) -> dict[str, Any]:
    body = {"experiment_id": experiment_id, **fields}
    return call(web, "POST", f"{API}/runs/create", body)["run"]


# --- the route table ------------------------------------------------------------------------

#: Every endpoint of MLflow's API the issue names, as MLflow's clients call it.
ENDPOINTS = [
    ("POST", "/mlflow/experiments/create"),
    ("GET", "/mlflow/experiments/get"),
    ("GET", "/mlflow/experiments/get-by-name"),
    ("POST", "/mlflow/experiments/search"),
    ("GET", "/mlflow/experiments/search"),
    ("POST", "/mlflow/experiments/update"),
    ("POST", "/mlflow/experiments/delete"),
    ("POST", "/mlflow/experiments/restore"),
    ("POST", "/mlflow/experiments/set-experiment-tag"),
    ("POST", "/mlflow/experiments/delete-experiment-tag"),
    ("POST", "/mlflow/runs/create"),
    ("GET", "/mlflow/runs/get"),
    ("POST", "/mlflow/runs/update"),
    ("POST", "/mlflow/runs/delete"),
    ("POST", "/mlflow/runs/restore"),
    ("POST", "/mlflow/runs/search"),
    ("POST", "/mlflow/runs/log-metric"),
    ("POST", "/mlflow/runs/log-parameter"),
    ("POST", "/mlflow/runs/set-tag"),
    ("POST", "/mlflow/runs/delete-tag"),
    ("POST", "/mlflow/runs/log-batch"),
    ("POST", "/mlflow/runs/log-model"),
    ("POST", "/mlflow/runs/log-inputs"),
    ("POST", "/mlflow/runs/outputs"),
    ("GET", "/mlflow/metrics/get-history"),
    ("GET", "/mlflow/artifacts/list"),
    ("POST", "/mlflow/registered-models/create"),
    ("GET", "/mlflow/registered-models/get"),
    ("POST", "/mlflow/registered-models/rename"),
    ("PATCH", "/mlflow/registered-models/update"),
    ("DELETE", "/mlflow/registered-models/delete"),
    ("GET", "/mlflow/registered-models/search"),
    ("POST", "/mlflow/registered-models/get-latest-versions"),
    ("GET", "/mlflow/registered-models/get-latest-versions"),
    ("POST", "/mlflow/registered-models/set-tag"),
    ("DELETE", "/mlflow/registered-models/delete-tag"),
    ("POST", "/mlflow/registered-models/alias"),
    ("GET", "/mlflow/registered-models/alias"),
    ("DELETE", "/mlflow/registered-models/alias"),
    ("POST", "/mlflow/model-versions/create"),
    ("GET", "/mlflow/model-versions/get"),
    ("PATCH", "/mlflow/model-versions/update"),
    ("DELETE", "/mlflow/model-versions/delete"),
    ("GET", "/mlflow/model-versions/search"),
    ("GET", "/mlflow/model-versions/get-download-uri"),
    ("POST", "/mlflow/model-versions/transition-stage"),
    ("POST", "/mlflow/model-versions/set-tag"),
    ("DELETE", "/mlflow/model-versions/delete-tag"),
    ("POST", "/mlflow/logged-models"),
    ("GET", "/mlflow/logged-models/<model_id>"),
    ("PATCH", "/mlflow/logged-models/<model_id>"),
    ("DELETE", "/mlflow/logged-models/<model_id>"),
    ("POST", "/mlflow/logged-models/search"),
    ("PATCH", "/mlflow/logged-models/<model_id>/tags"),
    ("DELETE", "/mlflow/logged-models/<model_id>/tags/<path:tag_key>"),
    ("POST", "/mlflow/logged-models/<model_id>/params"),
    ("GET", "/mlflow/logged-models/<model_id>/artifacts/directories"),
    ("GET", "/mlflow-artifacts/artifacts"),
    ("GET", "/mlflow-artifacts/artifacts/<path:artifact_path>"),
    ("PUT", "/mlflow-artifacts/artifacts/<path:artifact_path>"),
    ("DELETE", "/mlflow-artifacts/artifacts/<path:artifact_path>"),
    ("POST", "/mlflow-artifacts/mpu/create/<path:artifact_path>"),
    ("PUT", "/mlflow-artifacts/mpu/parts/<upload_id>/<int:part_number>"),
    ("POST", "/mlflow-artifacts/mpu/complete/<path:artifact_path>"),
    ("POST", "/mlflow-artifacts/mpu/abort/<path:artifact_path>"),
    ("GET", "/mlflow-artifacts/presigned/<path:artifact_path>"),
]


#: POSTs that only read (MLflow searches by POST).
READS_BY_POST = {
    "/mlflow/experiments/search",
    "/mlflow/runs/search",
    "/mlflow/logged-models/search",
    "/mlflow/registered-models/get-latest-versions",
}


def test_the_table_declares_every_endpoint_once_with_a_permission_and_a_summary():
    declared = [(r.method, r.rule) for r in mlflow_api.routes]
    assert sorted(declared) == sorted(ENDPOINTS)
    for route in mlflow_api.routes:
        assert route.summary.endswith((".", ")")), route.rule
        if route.rule.startswith("/mlflow-artifacts/mpu/parts/"):
            # Authorized by the upload id handed out by mpu/create (which needs EDIT).
            assert route.permission.level is Level.NONE
        else:
            assert route.permission.level >= Level.READ, route.rule
        reads = route.method == "GET" or route.rule in READS_BY_POST
        if route.permission.level is not Level.NONE:
            assert (route.permission.level == Level.READ) == reads, route.rule


@pytest.mark.parametrize("prefix", list(PREFIXES.values()), ids=list(PREFIXES))
def test_both_prefixes_serve_the_api(web, prefix):
    found = call(web, "GET", f"{prefix}/mlflow/experiments/get", {"experiment_id": "0"})
    assert found["experiment"]["name"] == "Default"
    assert found["experiment"]["artifact_location"] == "mlflow-artifacts:/0"


def test_version_and_server_info(web):
    assert web.get("/version").get_data(as_text=True) == "0.1.0"
    info = call(web, "GET", "/api/3.0/mlflow/server-info")
    assert info["multipart_uploads_enabled"] is True
    assert info["multipart_downloads_enabled"] is False
    assert call(web, "GET", "/ajax-api/3.0/mlflow/server-info") == info


# --- what is not supported ------------------------------------------------------------------

SEE = "; see 'Using MLflow clients' in mlreg's README for what mlreg server supports"


@pytest.mark.parametrize(
    ("method", "path", "what"),
    [
        ("POST", "/api/2.0/mlflow/traces", "MLflow's tracing"),
        ("GET", "/api/2.0/mlflow/traces/tr-1/info", "MLflow's tracing"),
        ("POST", "/api/3.0/mlflow/traces/search", "MLflow's tracing"),
        ("POST", "/v1/traces", "MLflow's tracing (OpenTelemetry trace export)"),
        ("POST", "/api/2.0/mlflow/webhooks", "MLflow's webhooks"),
        ("POST", "/api/3.0/mlflow/scorers/register", "MLflow's GenAI evaluation (scorers)"),
        ("POST", "/api/3.0/mlflow/datasets/create", "MLflow's GenAI evaluation datasets"),
        ("GET", "/ajax-api/2.0/mlflow/gateway/endpoints/list", "MLflow's the AI gateway"),
        (
            "POST",
            "/api/2.0/mlflow/prompt-optimization/jobs",
            "MLflow's the prompt registry (prompt optimization)",
        ),
        (
            "GET",
            "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
            "MLflow's metric histories by interval (MLflow's web UI)",
        ),
        ("POST", "/api/2.0/mlflow/no-such-thing", "this MLflow endpoint"),
        ("POST", "/graphql", "MLflow's GraphQL API (MLflow's web UI)"),
    ],
    ids=lambda v: v if not v.startswith("/") else None,
)
def test_unsupported_endpoints_are_501_naming_the_endpoint(web, method, path, what):
    answer = call(web, method, path, {}, status=501)
    if what == "this MLflow endpoint":
        prefix = "mlreg server does not implement this MLflow endpoint"
    else:
        prefix = f"mlreg server does not implement {what}"
    assert answer == {
        "error_code": "NOT_IMPLEMENTED",
        "message": f"{prefix}: {method} {path}{SEE}",
    }


def test_the_prompt_registry_is_not_supported(web):
    prompt = {"name": "p", "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]}
    answer = call(web, "POST", f"{API}/registered-models/create", prompt, status=501)
    assert answer["message"] == (
        "MLflow's prompt registry is not supported by mlreg server (POST "
        "/api/2.0/mlflow/registered-models/create with the tag mlflow.prompt.is_prompt)"
    )
    search = {"filter": "tags.`mlflow.prompt.is_prompt` = 'true'"}
    answer = call(web, "GET", f"{API}/registered-models/search", search, status=501)
    assert answer["error_code"] == "NOT_IMPLEMENTED"
    # What MLflow 3's clients add to every search to leave prompts out is accepted.
    call(web, "POST", f"{API}/registered-models/create", {"name": "plain"})
    found = call(
        web,
        "GET",
        f"{API}/registered-models/search",
        {"filter": "name = 'plain' AND tag.`mlflow.prompt.is_prompt` != 'true'"},
    )
    assert [m["name"] for m in found["registered_models"]] == ["plain"]


def test_a_known_path_with_the_wrong_method_is_405(web):
    answer = call(web, "GET", f"{API}/runs/create", status=405)
    assert answer == {
        "error_code": "ENDPOINT_NOT_FOUND",
        "message": "method GET is not allowed on /api/2.0/mlflow/runs/create; allowed: POST",
    }


# --- errors as MLflow answers them ----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code", "message"),
    [
        (
            "POST",
            "/experiments/create",
            {"name": "Default"},
            400,
            "RESOURCE_ALREADY_EXISTS",
            "experiment 'Default' already exists",
        ),
        (
            "GET",
            "/experiments/get",
            {"experiment_id": "404"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "experiment 404 does not exist",
        ),
        (
            "GET",
            "/experiments/get-by-name",
            {"experiment_name": "nope"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "experiment 'nope' does not exist",
        ),
        ("POST", "/experiments/create", {}, 400, "INVALID_PARAMETER_VALUE", "missing field 'name'"),
        (
            "POST",
            "/experiments/create",
            {"name": ""},
            400,
            "INVALID_PARAMETER_VALUE",
            "missing value for required field 'name'",
        ),
        (
            "POST",
            "/experiments/create",
            {"name": "x", "artifact_location": "s3://bucket/x"},
            400,
            "INVALID_PARAMETER_VALUE",
            "artifact_location: mlreg server keeps every experiment's artifacts itself (they are "
            "reached through mlflow-artifacts:/<experiment id>); leave it out",
        ),
        (
            "POST",
            "/experiments/search",
            {"max_results": "many"},
            400,
            "INVALID_PARAMETER_VALUE",
            "field 'max_results': expected an integer, got 'many'",
        ),
        (
            "POST",
            "/runs/search",
            {"experiment_ids": ["0"], "filter": "metrics.loss >>> 1"},
            400,
            "INVALID_PARAMETER_VALUE",
            "cannot parse filter clause 'metrics.loss >>> 1'; expected e.g. "
            '"metrics.val_loss < 0.5" or "params.optimizer = \'adam\'" joined by AND',
        ),
        (
            "GET",
            "/runs/get",
            {"run_id": "0" * 32},
            404,
            "RESOURCE_DOES_NOT_EXIST",
            f"run {'0' * 32!r} does not exist",
        ),
        (
            "GET",
            "/runs/get",
            {},
            400,
            "INVALID_PARAMETER_VALUE",
            "missing value for required field 'run_id'",
        ),
        (
            "POST",
            "/runs/update",
            {"run_id": "x", "status": "DONE"},
            400,
            "INVALID_PARAMETER_VALUE",
            "field 'status': expected one of 'RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', "
            "'KILLED', got 'DONE'",
        ),
        (
            "GET",
            "/registered-models/get",
            {"name": "nope"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "registered model 'nope' does not exist; registered models: none yet",
        ),
        (
            "POST",
            "/model-versions/transition-stage",
            {"name": "m", "version": "x", "stage": "Production"},
            400,
            "INVALID_PARAMETER_VALUE",
            "invalid version 'x': expected a positive integer",
        ),
    ],
    ids=[
        "exists",
        "missing-id",
        "missing-name",
        "no-name",
        "empty-name",
        "artifact-location",
        "max-results",
        "filter",
        "missing-run",
        "no-run-id",
        "status",
        "missing-model",
        "version",
    ],
)
def test_errors_carry_mlflows_codes_and_statuses(web, method, path, body, status, code, message):
    answer = call(web, method, API + path, body, status=status)
    assert (answer["error_code"], answer["message"]) == (code, message)


def test_where_mlflow_answers_with_another_code_so_does_mlreg(web):
    """Renaming an experiment to a taken name is BAD_REQUEST in MLflow (creating one is
    RESOURCE_ALREADY_EXISTS), and an alias it cannot find INVALID_PARAMETER_VALUE (400), not
    RESOURCE_DOES_NOT_EXIST: MLflow's clients see the codes they see against MLflow."""
    taken = call(web, "POST", f"{API}/experiments/create", {"name": "taken"})["experiment_id"]
    mine = call(web, "POST", f"{API}/experiments/create", {"name": "mine"})["experiment_id"]
    answer = call(
        web,
        "POST",
        f"{API}/experiments/update",
        {"experiment_id": mine, "new_name": "taken"},
        status=400,
    )
    assert answer == {"error_code": "BAD_REQUEST", "message": "experiment 'taken' already exists"}
    assert (
        call(web, "GET", f"{API}/experiments/get", {"experiment_id": taken})["experiment"]["name"]
        == "taken"
    )
    call(web, "POST", f"{API}/registered-models/create", {"name": "m"})
    for name in ("m", "nope"):
        answer = call(
            web, "GET", f"{API}/registered-models/alias", {"name": name, "alias": "x"}, status=400
        )
        assert answer["error_code"] == "INVALID_PARAMETER_VALUE", answer
    assert answer["message"] == "registered model 'nope' does not exist; registered models: m"


def test_malformed_and_oversized_bodies(web):
    bad = web.post(f"{API}/runs/create", data="{nope", content_type="application/json")
    assert bad.status_code == 400
    assert bad.get_json()["message"].startswith("malformed JSON: ")
    big = {"name": "x" * (1 << 20)}
    answer = call(web, "POST", f"{API}/experiments/create", big, status=413)
    assert set(answer) == {"error_code", "message"}  # MLflow's shape, nothing more
    assert answer["error_code"] == "INVALID_PARAMETER_VALUE"
    assert answer["message"].endswith("the limit is 1048576 bytes (MLREG_MAX_REQUEST_BYTES)")


# --- experiments and runs -------------------------------------------------------------------


def test_runs_as_mlflow_records_them_are_mlreg_runs(web, services):
    parent = run_in(web, run_name="parent", user_id="ann", start_time=1_700_000_000_000)
    pid = parent["info"]["run_id"]
    assert parent["info"] == {
        "run_id": pid,
        "run_uuid": pid,
        "run_name": "parent",
        "experiment_id": "0",
        "user_id": "ann",
        "status": "RUNNING",
        "start_time": 1_700_000_000_000,
        "artifact_uri": f"mlflow-artifacts:/0/{pid}/artifacts",
        "lifecycle_stage": "active",
    }
    assert parent["data"]["tags"] == [{"key": "mlflow.runName", "value": "parent"}]
    child = run_in(web, tags=[{"key": "mlflow.parentRunId", "value": pid}])
    cid = child["info"]["run_id"]
    call(web, "POST", f"{API}/runs/set-tag", {"run_id": cid, "key": "mlflow.runName", "value": "c"})
    call(
        web,
        "POST",
        f"{API}/runs/log-batch",
        {
            "run_id": cid,
            "metrics": [{"key": "loss", "value": "NaN", "timestamp": "5", "step": "1"}],
            "params": [{"key": "lr", "value": "0.1"}],
        },
    )
    call(web, "POST", f"{API}/runs/update", {"run_id": cid, "status": "FINISHED", "end_time": 9})
    # A finished run still takes metrics through MLflow's API, as MLflow allows.
    call(
        web,
        "POST",
        f"{API}/runs/log-metric",
        {"run_id": cid, "key": "late", "value": 1.5, "timestamp": 10},
    )
    # What MLflow recorded is mlreg's own data: the run, its parent, its user, its logs.
    run = services.tracking.get_run(cid)
    assert (run.info.run_name, run.info.parent_run_id, run.info.end_time) == ("c", pid, 9)
    assert run.data.params == {"lr": "0.1"}
    assert run.data.tags["mlflow.parentRunId"] == pid and "mlflow.runName" not in run.data.tags
    assert services.tracking.get_run(pid).data.tags["mlreg.user"] == "ann"
    shown = call(web, "GET", f"{API}/runs/get", {"run_id": cid})["run"]
    assert {t["key"]: t["value"] for t in shown["data"]["tags"]} == {
        "mlflow.parentRunId": pid,
        "mlflow.runName": "c",
    }
    assert sorted(m["key"] for m in shown["data"]["metrics"]) == ["late", "loss"]
    nan = next(m for m in shown["data"]["metrics"] if m["key"] == "loss")
    assert (nan["value"], nan["timestamp"], nan["step"]) == ("NaN", 5, 1)


def test_metric_history_pages(web):
    rid = run_in(web)["info"]["run_id"]
    metrics = [{"key": "m", "value": i, "timestamp": i, "step": i} for i in range(5)]
    call(web, "POST", f"{API}/runs/log-batch", {"run_id": rid, "metrics": metrics})
    first = call(
        web,
        "GET",
        f"{API}/metrics/get-history",
        {"run_id": rid, "metric_key": "m", "max_results": 3},
    )
    assert [m["value"] for m in first["metrics"]] == [0, 1, 2]
    rest = call(
        web,
        "GET",
        f"{API}/metrics/get-history",
        {"run_id": rid, "metric_key": "m", "page_token": first["next_page_token"]},
    )
    assert [m["value"] for m in rest["metrics"]] == [3, 4] and "next_page_token" not in rest


def test_log_batch_limits_and_log_model_history(web):
    rid = run_in(web)["info"]["run_id"]
    too_many = [{"key": f"p{i}", "value": "x"} for i in range(101)]
    answer = call(
        web, "POST", f"{API}/runs/log-batch", {"run_id": rid, "params": too_many}, status=400
    )
    assert answer["message"] == "a batch takes at most 100 params, got 101"
    for name in ("a", "b"):
        call(
            web,
            "POST",
            f"{API}/runs/log-model",
            {"run_id": rid, "model_json": json.dumps({"artifact_path": name})},
        )
    run = call(web, "GET", f"{API}/runs/get", {"run_id": rid})["run"]
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert json.loads(tags["mlflow.log-model.history"]) == [
        {"artifact_path": "a"},
        {"artifact_path": "b"},
    ]
    answer = call(
        web, "POST", f"{API}/runs/log-model", {"run_id": rid, "model_json": "[1]"}, status=400
    )
    assert answer["message"] == "model_json: expected a JSON object (the MLmodel's fields)"


def test_search_runs_of_no_experiment_is_empty(web):
    assert call(web, "POST", f"{API}/runs/search", {"experiment_ids": []}) == {"runs": []}


# --- the artifact proxy ---------------------------------------------------------------------


def test_upload_list_download_and_delete_through_the_proxy(web, services):
    run = run_in(web)
    root = f"0/{run['info']['run_id']}/artifacts"
    call(web, "PUT", f"{ARTIFACTS}/artifacts/{root}/dir/a.txt", data=b"alpha")
    call(web, "PUT", f"{ARTIFACTS}/artifacts/{root}/b.bin", data=bytes(range(256)))
    listed = call(web, "GET", f"{ARTIFACTS}/artifacts", {"path": root})
    assert listed == {
        "files": [
            {"path": "b.bin", "is_dir": False, "file_size": 256},
            {"path": "dir", "is_dir": True},
        ]
    }
    assert call(web, "GET", f"{ARTIFACTS}/artifacts", {"path": f"{root}/dir/a.txt"}) == {
        "files": []
    }
    assert call(web, "GET", f"{ARTIFACTS}/artifacts", {"path": f"{root}/none"}) == {"files": []}
    assert web.get(f"{ARTIFACTS}/artifacts/{root}/dir/a.txt").data == b"alpha"
    ranged = web.get(f"{ARTIFACTS}/artifacts/{root}/b.bin", headers={"Range": "bytes=10-12"})
    assert (ranged.status_code, ranged.data) == (206, bytes([10, 11, 12]))
    presigned = call(web, "GET", f"{ARTIFACTS}/presigned/{root}/b.bin")
    assert presigned == {
        "url": f"http://localhost{ARTIFACTS}/artifacts/{root}/b.bin",
        "headers": {},
        "file_size": 256,
    }
    # The same files through mlreg's own API: no second store.
    via_mlreg = services.tracking.list_artifacts(run["info"]["run_id"])
    assert [f.path for f in via_mlreg] == ["b.bin", "dir"]
    call(web, "DELETE", f"{ARTIFACTS}/artifacts/{root}/dir")
    assert [
        f["path"] for f in call(web, "GET", f"{ARTIFACTS}/artifacts", {"path": root})["files"]
    ] == ["b.bin"]
    listing = call(web, "GET", f"{API}/artifacts/list", {"run_id": run["info"]["run_id"]})
    assert listing == {
        "root_uri": f"mlflow-artifacts:/{root}",
        "files": [{"path": "b.bin", "is_dir": False, "file_size": 256}],
    }


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        (
            "GET",
            "{root}/../../x",
            400,
            "unsafe path '{root}/../../x': no empty, '.', '..' or encoded segments allowed",
        ),
        (
            "GET",
            "{root}/%2e%2e/x",
            400,
            # werkzeug decodes the path before routing: the check sees the decoded '..'
            "unsafe path '{root}/../x': no empty, '.', '..' or encoded segments allowed",
        ),
        ("GET", "5/{rid}/artifacts/a", 404, "run {rid} is in experiment 0, not 5"),
        (
            "PUT",
            "elsewhere/a",
            404,
            "no artifact location 'elsewhere/a': mlreg serves <experiment id>/<run id>/"
            "artifacts/…, <experiment id>/models/<model id>/artifacts/… and "
            "registry/<model>/<version>/…",
        ),
        ("GET", "{root}/missing.txt", 404, "no file artifact 'missing.txt'"),
        ("PUT", "{root}", 400, "name the file to upload below the artifact root"),
    ],
    ids=["traversal", "encoded", "other-experiment", "unknown", "missing", "no-name"],
)
def test_proxy_paths_are_checked(web, method, path, status, message):
    rid = run_in(web)["info"]["run_id"]
    root = f"0/{rid}/artifacts"
    path = path.format(root=root, rid=rid)
    answer = call(web, method, f"{ARTIFACTS}/artifacts/{path}", status=status, data=b"x")
    assert answer["message"] == message.format(root=root, rid=rid)


def test_multipart_upload(web, services):
    rid = run_in(web)["info"]["run_id"]
    root = f"0/{rid}/artifacts"
    parts = [b"a" * 1000, b"b" * 1000, b"c" * 10]
    created = call(
        web,
        "POST",
        f"{ARTIFACTS}/mpu/create/{root}/big",
        {"path": "/home/ann/data/weights.bin", "num_parts": 3},
    )
    upload = created["upload_id"]
    assert [c["part_number"] for c in created["credentials"]] == [1, 2, 3]
    assert created["credentials"][0]["url"] == (f"http://localhost{ARTIFACTS}/mpu/parts/{upload}/1")
    etags = []
    for n, data in enumerate(parts, start=1):
        response = web.put(f"{ARTIFACTS}/mpu/parts/{upload}/{n}", data=data)
        assert response.status_code == 200
        etags.append(response.headers["ETag"])
    assert etags[0] == f'"{hashlib.sha256(parts[0]).hexdigest()}"'
    bad = {
        "path": "weights.bin",
        "upload_id": upload,
        "parts": [{"part_number": n, "etag": '"x"'} for n in (1, 2, 3)],
    }
    answer = call(web, "POST", f"{ARTIFACTS}/mpu/complete/{root}/big", bad, status=400)
    assert answer["message"] == f"part 1 of upload {upload}: ETag mismatch"
    wrong = {"path": "other.bin", "upload_id": upload, "parts": []}
    answer = call(web, "POST", f"{ARTIFACTS}/mpu/complete/{root}/big", wrong, status=400)
    assert answer["message"] == f"upload {upload} is of 'weights.bin' into '{root}/big'"
    done = {
        "path": "weights.bin",
        "upload_id": upload,
        "parts": [{"part_number": n, "etag": e} for n, e in enumerate(etags, start=1)],
    }
    call(web, "POST", f"{ARTIFACTS}/mpu/complete/{root}/big", done)
    assert web.get(f"{ARTIFACTS}/artifacts/{root}/big/weights.bin").data == b"".join(parts)
    assert services.tracking.artifact_path(rid, "big/weights.bin").read_bytes() == b"".join(parts)
    answer = call(web, "PUT", f"{ARTIFACTS}/mpu/parts/{upload}/1", status=404, data=b"x")
    assert answer["message"] == (f"no multipart upload '{upload}' (completed, aborted or expired)")


def test_multipart_upload_abort_and_bad_ids(web):
    rid = run_in(web)["info"]["run_id"]
    root = f"0/{rid}/artifacts"
    upload = call(web, "POST", f"{ARTIFACTS}/mpu/create/{root}", {"path": "f.bin", "num_parts": 1})[
        "upload_id"
    ]
    answer = call(web, "PUT", f"{ARTIFACTS}/mpu/parts/{upload}/2", status=400, data=b"x")
    assert answer["message"] == f"part_number 2 is not a part of upload {upload}"
    call(web, "POST", f"{ARTIFACTS}/mpu/abort/{root}", {"path": "f.bin", "upload_id": upload})
    answer = call(
        web,
        "POST",
        f"{ARTIFACTS}/mpu/complete/{root}",
        {"path": "f.bin", "upload_id": "../../etc"},
        status=400,
    )
    assert answer["message"] == "invalid upload_id '../../etc'"


# --- registration from what the server holds ------------------------------------------------


def _model_in_run(web, tmp_path: Path) -> tuple[str, Path]:
    rid = run_in(web)["info"]["run_id"]
    model = make_model_dir(tmp_path / "model")
    for path in sorted(p for p in model.rglob("*") if p.is_file()):
        rel = path.relative_to(model).as_posix()
        call(
            web,
            "PUT",
            f"{ARTIFACTS}/artifacts/0/{rid}/artifacts/model/{rel}",
            data=path.read_bytes(),
        )
    return rid, model


def test_versions_from_run_artifacts_are_ready_with_their_digest(web, services, tmp_path):
    rid, model = _model_in_run(web, tmp_path)
    call(web, "POST", f"{API}/registered-models/create", {"name": "m"})
    sources = [
        f"mlflow-artifacts:/0/{rid}/artifacts/model",
        f"mlflow-artifacts://elsewhere:5000/0/{rid}/artifacts/model",
        f"runs:/{rid}/model",
        "models:/m/1",
    ]
    for number, source in enumerate(sources, start=1):
        created = call(
            web,
            "POST",
            f"{API}/model-versions/create",
            {"name": "m", "source": source, "run_id": rid},
        )["model_version"]
        assert (created["version"], created["status"], created["source"]) == (
            str(number),
            "READY",
            source,
        )
        assert created["mlreg_digest"] == dir_digest(model)
    version = services.registry.get_model_version("m", 4)
    assert version.digest == dir_digest(model) and version.signature is not None
    uri = call(web, "GET", f"{API}/model-versions/get-download-uri", {"name": "m", "version": "2"})
    assert uri == {"artifact_uri": "mlflow-artifacts:/registry/m/2"}
    listed = call(web, "GET", f"{ARTIFACTS}/artifacts", {"path": "registry/m/2"})
    assert listed["files"] == [
        {"path": "MLmodel", "is_dir": False, "file_size": (model / "MLmodel").stat().st_size},
        {"path": "data", "is_dir": True},
    ]
    served = web.get(f"{ARTIFACTS}/artifacts/registry/m/2/data/weights.bin")
    assert served.data == b"weights" and served.headers["ETag"] == f'"{version.digest}"'
    answer = call(web, "PUT", f"{ARTIFACTS}/artifacts/registry/m/2/x", status=400, data=b"x")
    assert answer["message"] == (
        "a registered version's files cannot be changed; register a new version instead"
    )


def test_versions_from_a_logged_model(web, services, tmp_path):
    rid, model = _model_in_run(web, tmp_path)
    logged = call(
        web,
        "POST",
        f"{API}/logged-models",
        {"experiment_id": "0", "name": "model", "source_run_id": rid},
    )["model"]
    mid = logged["info"]["model_id"]
    assert logged["info"]["artifact_uri"] == f"mlflow-artifacts:/0/models/{mid}/artifacts"
    for path in sorted(p for p in model.rglob("*") if p.is_file()):
        rel = path.relative_to(model).as_posix()
        call(
            web,
            "PUT",
            f"{ARTIFACTS}/artifacts/0/models/{mid}/artifacts/{rel}",
            data=path.read_bytes(),
        )
    call(web, "PATCH", f"{API}/logged-models/{mid}", {"status": "LOGGED_MODEL_READY"})
    created = call(
        web,
        "POST",
        f"{API}/model-versions/create",
        {"name": "lm", "source": f"models:/{mid}", "model_id": mid},
    )["model_version"]
    assert (created["status"], created["model_id"]) == ("READY", mid)
    assert services.registry.get_model_version("lm", 1).model_id == mid
    # mlreg's runs:/ URIs find a run's logged model by its name.
    resolved = services.tracking.resolve(f"runs:/{rid}/model")
    assert dir_digest(resolved.path) == dir_digest(model)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "s3://bucket/model",
            "source 's3://bucket/model': mlreg server registers model files it holds; use an "
            "mlflow-artifacts:/ URI of a run's or logged model's files, runs:/<run id>/<path>, "
            "models:/<logged model id> or models:/<name>/<version>",
        ),
        (
            "mlflow-artifacts:/0/{rid}/artifacts/model/data",
            "source 'mlflow-artifacts:/0/{rid}/"
            "artifacts/model/data' holds no MLmodel file; register a model directory",
        ),
        ("runs:/{rid}/nothing", "no artifact 'nothing' in this run"),
    ],
    ids=["foreign", "not-a-model", "missing"],
)
def test_bad_sources_make_no_version(web, services, tmp_path, source, message):
    rid, _ = _model_in_run(web, tmp_path)
    source = source.format(rid=rid)
    answer = call(
        web,
        "POST",
        f"{API}/model-versions/create",
        {"name": "m", "source": source},
        status=404 if "no artifact" in message else 400,
    )
    assert answer["message"] == message.format(rid=rid)
    assert services.registry.search_model_versions(name="m").items == []


def test_unsupported_areas_are_listed_in_the_readme():
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    section = readme.split("## Using MLflow clients", 1)[1].split("\n## ", 1)[0]
    for area in sorted(set(meta.AREAS.values())):
        assert area.split(" (")[0].removeprefix("the ") in section, area
