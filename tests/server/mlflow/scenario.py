"""The same MlflowClient calls, for every endpoint of MLflow's API that mlreg serves, against a
server: what each call returned (as plain data) or the error code it raised, by label.

Run against a real ``mlflow server`` and against ``mlreg server`` with the same inputs, the two
transcripts are compared field by field once ids and "now" timestamps are normalised
(:func:`normalise`). Calls that depend on the client's version (logged models are MLflow 3's)
are made only where the client has them.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

from tests.conftest import make_model_dir

#: Where MLflow's server and mlreg's differ by design: (label pattern, field path pattern) ->
#: why. Every other field of every call must be equal.
KNOWN_DIFFERENCES = {
    ("version download uri", ""): "mlreg hands out its registry copy "
    "(mlflow-artifacts:/registry/<name>/<version>) where MLflow points at the source; the files "
    "downloaded through both are compared instead",
    (
        r"^(search versions|search registered models|get registered model|get renamed model|"
        r"update registered model|latest)",
        r"\.aliases$",
    ): "mlreg lists a version's aliases "
    "wherever it lists the version; MLflow leaves them out of searches and latest_versions",
}


def known(label: str, path: str) -> bool:
    """Whether a difference at ``path`` of ``label`` is one of KNOWN_DIFFERENCES."""
    return any(
        re.search(label_re, label) and re.search(path_re, path)
        for label_re, path_re in KNOWN_DIFFERENCES
    )


class Transcript:
    """What each labelled call returned (plain data) or raised (its error code)."""

    def __init__(self, client: MlflowClient) -> None:
        self.client = client
        self.steps: dict[str, Any] = {}

    def __call__(self, label: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        assert label not in self.steps, f"label {label!r} used twice"
        try:
            value = fn(*args, **kwargs)
        except MlflowException as e:
            self.steps[label] = {"error": e.error_code}
            return None
        self.steps[label] = plain(value)
        return value


def plain(value: Any) -> Any:
    """MLflow's entities (and lists, pages, dicts of them) as plain data."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        out = [plain(v) for v in value]
        token = getattr(value, "token", None)
        return {"items": out, "has_next_page": bool(token)} if hasattr(value, "token") else out
    if hasattr(value, "to_dictionary"):
        doc = plain(value.to_dictionary())
        if hasattr(value, "_metric_objs"):  # RunData: the latest metrics with step and time
            doc["metric_objects"] = sorted(
                (plain(dict(m)) for m in value._metric_objs), key=lambda m: m["key"]
            )
        return doc
    if hasattr(value, "__iter__") and hasattr(value, "_properties"):
        return {k: plain(v) for k, v in dict(value).items()}
    if hasattr(value, "value") and hasattr(value, "name"):  # an enum
        return value.name
    return repr(value)


_RUN_ID = re.compile(r"\b[0-9a-f]{32}\b")
_MODEL_ID = re.compile(r"\bm-[0-9a-f]{32}\b")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?")


def normalise(steps: dict[str, Any]) -> dict[str, Any]:
    """Ids numbered in order of appearance, times near now as ``<now>`` (and dates in text as
    ``<time>``), NaN comparable, and
    a registered model's ``latest_versions`` in version order and a run's ``model_outputs`` by
    id (their order is MLflow's accident: 2.22 lists latest versions by version, 3.17's searches
    by stage name; MLflow lists a run's outputs in no particular order)."""
    ids: dict[str, str] = {}
    now_ms = time.time() * 1000

    def name_id(match: re.Match[str]) -> str:
        found = match.group(0)
        if found not in ids:
            kind = "model" if found.startswith("m-") else "run"
            ids[found] = f"<{kind}-{sum(1 for v in ids.values() if kind in v) + 1}>"
        return ids[found]

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            value = _DATETIME.sub("<time>", value)
            return _RUN_ID.sub(name_id, _MODEL_ID.sub(name_id, value))
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and abs(value - now_ms) < 86_400_000:
            return "<now>"
        if isinstance(value, float) and math.isnan(value):
            return "NaN"
        if isinstance(value, dict):
            doc = {walk(k): walk(v) for k, v in value.items()}
            if isinstance(doc.get("latest_versions"), list):
                doc["latest_versions"].sort(key=lambda v: int(v.get("version") or 0))
            if isinstance(doc.get("model_outputs"), list):
                doc["model_outputs"].sort(key=lambda m: str(m.get("model_id")))
            return doc
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(steps)


def _has(client: MlflowClient, name: str) -> bool:
    return hasattr(client, name)


def run(client: MlflowClient, work: Path) -> dict[str, Any]:
    """Every call, in order; the transcript's steps."""
    t = Transcript(client)
    experiments(t)
    run_ids = runs(t)
    artifacts(t, run_ids["main"], work)
    if _has(client, "create_logged_model"):
        logged_models(t, run_ids["main"], work)
    registry(t, run_ids["main"], work)
    logged_pyfunc_model(t, run_ids["main"])
    return t.steps


def experiments(t: Transcript) -> None:
    c = t.client
    exp = t("create experiment", c.create_experiment, "cmp-exp", tags={"team": "cv"})
    t("create the same experiment", c.create_experiment, "cmp-exp")
    t("get experiment", c.get_experiment, exp)
    t("get experiment by name", c.get_experiment_by_name, "cmp-exp")
    t("get missing experiment by name", c.get_experiment_by_name, "nope")
    t("get missing experiment", c.get_experiment, "4040")
    t("get default experiment", c.get_experiment, "0")
    t("set experiment tag", c.set_experiment_tag, exp, "stage", "dev")
    if _has(c, "delete_experiment_tag"):
        t("delete experiment tag", c.delete_experiment_tag, exp, "team")
    other = t("create second experiment", c.create_experiment, "cmp-other")
    t("rename experiment", c.rename_experiment, other, "cmp-renamed")
    t("rename to a taken name", c.rename_experiment, other, "cmp-exp")
    t(
        "search experiments by name",
        c.search_experiments,
        filter_string="name LIKE 'cmp-%'",
        order_by=["name ASC"],
    )
    t("search experiments, newest first", c.search_experiments)
    t("search experiments by tag", c.search_experiments, filter_string="tags.stage = 'dev'")
    t("search experiments, one a page", c.search_experiments, max_results=1)
    t("delete experiment", c.delete_experiment, other)
    t("get deleted experiment", c.get_experiment, other)
    t("search active experiments", c.search_experiments, view_type=ViewType.ACTIVE_ONLY)
    t("search deleted experiments", c.search_experiments, view_type=ViewType.DELETED_ONLY)
    t("restore experiment", c.restore_experiment, other)
    t("search all experiments", c.search_experiments, view_type=ViewType.ALL)


def runs(t: Transcript) -> dict[str, str]:
    c = t.client
    exp = c.get_experiment_by_name("cmp-exp").experiment_id
    main = t(
        "create run",
        c.create_run,
        exp,
        start_time=1_700_000_000_000,
        tags={"team": "cv"},
        run_name="main",
    ).info.run_id
    second = t("create second run", c.create_run, exp, run_name="second").info.run_id
    t("create run in missing experiment", c.create_run, "4040", run_name="x")
    t("log metric", c.log_metric, main, "loss", 0.5, timestamp=1_700_000_001_000, step=0)
    t("log metric, step 1", c.log_metric, main, "loss", 0.25, timestamp=1_700_000_002_000, step=1)
    t("log NaN", c.log_metric, main, "nan_metric", math.nan, timestamp=1_700_000_003_000)
    t("log param", c.log_param, main, "optimizer", "adam")
    t("log param again, same value", c.log_param, main, "optimizer", "adam")
    t("log param again, new value", c.log_param, main, "optimizer", "sgd")
    t("set tag", c.set_tag, main, "owner", "ann")
    t("set run name by tag", c.set_tag, second, "mlflow.runName", "second-renamed")
    t("delete tag", c.delete_tag, main, "owner")
    t("delete missing tag", c.delete_tag, main, "owner")
    t(
        "log batch",
        c.log_batch,
        main,
        metrics=[
            Metric("acc", 0.75, 1_700_000_004_000, 0),
            Metric("acc", 0.875, 1_700_000_005_000, 1),
        ],
        params=[Param("epochs", "10"), Param("batch_size", "32")],
        tags=[RunTag("data", "v2")],
    )
    t("log batch to a missing run", c.log_batch, "0" * 32, params=[Param("a", "b")])
    t(
        "log inputs",
        c.log_inputs,
        main,
        [
            DatasetInput(
                Dataset("train", "d1", "code", '{"tags": {}}', '{"type": "x"}', "{}"),
                [InputTag("mlflow.data.context", "train")],
            )
        ],
    )
    t("get metric history", c.get_metric_history, main, "loss")
    t("get history of a missing metric", c.get_metric_history, main, "nope")
    t("update run name", c.update_run, second, name="second-again")
    t("end run", c.set_terminated, second, "FINISHED", end_time=1_700_000_060_000)
    t("log metric to a finished run", c.log_metric, second, "late", 1.0, 1_700_000_070_000)
    t("tag a finished run", c.set_tag, second, "reviewed", "yes")
    child = t(
        "create nested run",
        c.create_run,
        exp,
        tags={"mlflow.parentRunId": main},
        run_name="child",
    ).info.run_id
    t("search runs by parent", c.search_runs, [exp], f"tags.mlflow.parentRunId = '{main}'")
    t(
        "log too many metrics in one batch",
        c.log_batch,
        child,
        metrics=[Metric("m", float(i), 1_700_000_000_000, i) for i in range(1001)],
    )
    t("get run", c.get_run, main)
    t("get second run", c.get_run, second)
    t("get missing run", c.get_run, "0" * 32)
    t("search runs", c.search_runs, [exp], order_by=["attributes.start_time ASC"])
    t("search runs by metric", c.search_runs, [exp], "metrics.acc > 0.8")
    t(
        "search runs by param and tag",
        c.search_runs,
        [exp],
        "params.optimizer = 'adam' and tags.data = 'v2'",
    )
    t("search runs by status", c.search_runs, [exp], "attributes.status = 'FINISHED'")
    t("search runs by name", c.search_runs, [exp], "attributes.run_name ILIKE 'SECOND%'")
    t("search runs ordered by metric", c.search_runs, [exp], order_by=["metrics.acc DESC"])
    t("search runs, one a page", c.search_runs, [exp], max_results=1)
    t("search runs with a bad filter", c.search_runs, [exp], "metrics.acc >>> 1")
    t("delete run", c.delete_run, second)
    t("get deleted run", c.get_run, second)
    t("search active runs", c.search_runs, [exp])
    t("search deleted runs", c.search_runs, [exp], run_view_type=ViewType.DELETED_ONLY)
    t("log to a deleted run", c.log_param, second, "late", "x")
    t("restore run", c.restore_run, second)
    t("search all runs", c.search_runs, [exp], run_view_type=ViewType.ALL)
    return {"main": main, "second": second}


def artifacts(t: Transcript, run_id: str, work: Path) -> None:
    c = t.client
    files = work / "files"
    (files / "sub").mkdir(parents=True)
    (files / "a.txt").write_text("alpha")
    (files / "sub" / "b.bin").write_bytes(bytes(range(256)) * 64)
    t("log artifact", c.log_artifact, run_id, str(files / "a.txt"))
    t("log artifacts", c.log_artifacts, run_id, str(files), "dir")
    t("log text", c.log_text, run_id, "notes", "notes/readme.txt")
    t("list artifacts", c.list_artifacts, run_id)
    t("list a directory", c.list_artifacts, run_id, "dir")
    t("list a nested directory", c.list_artifacts, run_id, "dir/sub")
    t("list a file", c.list_artifacts, run_id, "a.txt")
    t("list a missing path", c.list_artifacts, run_id, "missing")
    big = files.parent / "big" / "weights.bin"
    big.parent.mkdir()
    big.write_bytes(bytes(range(256)) * 12_000)  # 3 MB: in 1 MB parts
    with _environ(MULTIPART):
        t("log a file in parts", c.log_artifact, run_id, str(big), "parts")
    parted = Path(c.download_artifacts(run_id, "parts", str(_fresh(work / "parts"))))
    t.steps["the file in parts arrived whole"] = (parted / "weights.bin").read_bytes() == (
        big.read_bytes()
    )
    fetched = Path(c.download_artifacts(run_id, "dir", str(_fresh(work / "download"))))
    t.steps["downloaded files"] = sorted(
        (p.relative_to(fetched).as_posix(), p.read_bytes().hex()[:64], p.stat().st_size)
        for p in fetched.rglob("*")
        if p.is_file()
    )


def logged_models(t: Transcript, run_id: str, work: Path) -> None:
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus

    c = t.client
    exp = c.get_run(run_id).info.experiment_id
    model = t(
        "create logged model",
        c.create_logged_model,
        exp,
        name="model",
        source_run_id=run_id,
        tags={"a": "1"},
        params={"units": "8"},
        model_type="keras",
    )
    mid = model.model_id
    t("log model params", c.log_model_params, mid, {"depth": "2"})
    t("set logged model tags", c.set_logged_model_tags, mid, {"b": "2"})
    t("delete logged model tag", c.delete_logged_model_tag, mid, "a")
    t(
        "log model metric",
        c.log_metric,
        run_id,
        "val_acc",
        0.5,
        timestamp=1_700_000_010_000,
        step=3,
        model_id=mid,
    )
    t("log model artifacts", c.log_model_artifacts, mid, str(make_model_dir(work / "lm")))
    t("list logged model artifacts", c.list_logged_model_artifacts, mid)
    t("list logged model data", c.list_logged_model_artifacts, mid, "data")
    t("finalize logged model", c.finalize_logged_model, mid, LoggedModelStatus.READY)
    t("log outputs", c.log_outputs, run_id, [LoggedModelOutput(mid, 3)])
    t("get logged model", c.get_logged_model, mid)
    t("get run with outputs", c.get_run, run_id)
    other = t("create second logged model", c.create_logged_model, exp, name="other")
    t("search logged models", c.search_logged_models, [exp])
    t(
        "search logged models by run and name",
        c.search_logged_models,
        [exp],
        f"source_run_id = '{run_id}' AND name = 'model'",
    )
    t(
        "search logged models by name, ordered",
        c.search_logged_models,
        [exp],
        order_by=[{"field_name": "name", "ascending": False}],
    )
    t("delete logged model", c.delete_logged_model, other.model_id)
    t("get deleted logged model", c.get_logged_model, other.model_id)
    t("get missing logged model", c.get_logged_model, "m-" + "0" * 32)


def registry(t: Transcript, run_id: str, work: Path) -> None:
    c = t.client
    # Not "model": MLflow 3 would find the run's logged model of that name first.
    c.log_artifacts(run_id, str(make_model_dir(work / "model")), "registered-model")
    source = f"{c.get_run(run_id).info.artifact_uri}/registered-model"
    t("create registered model", c.create_registered_model, "cmp-model", {"team": "cv"}, "first")
    t("create the same registered model", c.create_registered_model, "cmp-model")
    t("create undescribed registered model", c.create_registered_model, "cmp-bare")
    t("get undescribed registered model", c.get_registered_model, "cmp-bare")
    t("get missing registered model", c.get_registered_model, "nope")
    t("create version", c.create_model_version, "cmp-model", source, run_id, {"data": "v1"})
    t("create version 2", c.create_model_version, "cmp-model", source, run_id, description="two")
    t("create version 3", c.create_model_version, "cmp-model", source, run_id)
    t("get version", c.get_model_version, "cmp-model", "1")
    t("get missing version", c.get_model_version, "cmp-model", "9")
    t("update version", c.update_model_version, "cmp-model", "1", "the first")
    t("set version tag", c.set_model_version_tag, "cmp-model", "1", "k", "v")
    t("delete version tag", c.delete_model_version_tag, "cmp-model", "1", "data")
    t("transition to Staging", c.transition_model_version_stage, "cmp-model", "1", "Staging")
    t("transition to Production", c.transition_model_version_stage, "cmp-model", "2", "production")
    t(
        "transition, archiving the others",
        c.transition_model_version_stage,
        "cmp-model",
        "3",
        "Production",
        archive_existing_versions=True,
    )
    t("transition to a bad stage", c.transition_model_version_stage, "cmp-model", "1", "Live")
    t("latest versions", c.get_latest_versions, "cmp-model")
    t("latest in Production", c.get_latest_versions, "cmp-model", ["Production"])
    t("set alias", c.set_registered_model_alias, "cmp-model", "champion", "2")
    t("get version by alias", c.get_model_version_by_alias, "cmp-model", "champion")
    t("get missing alias", c.get_model_version_by_alias, "cmp-model", "nope")
    t("set model tag", c.set_registered_model_tag, "cmp-model", "owner", "ann")
    t("delete model tag", c.delete_registered_model_tag, "cmp-model", "team")
    t("update registered model", c.update_registered_model, "cmp-model", "described")
    t("get registered model", c.get_registered_model, "cmp-model")
    t("search versions by name", c.search_model_versions, "name = 'cmp-model'")
    t("search versions by run", c.search_model_versions, f"run_id = '{run_id}'")
    t("search versions by tag", c.search_model_versions, "tags.k = 'v'")
    t("search registered models", c.search_registered_models, "name LIKE 'cmp-%'")
    t("search registered models by tag", c.search_registered_models, "tags.owner = 'ann'")
    uri = t("version download uri", c.get_model_version_download_uri, "cmp-model", "2")
    assert uri  # compared through the files instead (KNOWN_DIFFERENCES)
    source_files = str(_fresh(work / "by-run"))
    fetched = Path(c.download_artifacts(run_id, "registered-model", source_files))
    from mlflow.artifacts import download_artifacts

    registered = Path(
        download_artifacts("models:/cmp-model/2", dst_path=str(_fresh(work / "by-model")))
    )
    t.steps["registered files equal the source's"] = _contents(registered) == _contents(fetched)
    t("delete alias", c.delete_registered_model_alias, "cmp-model", "champion")
    t("delete version", c.delete_model_version, "cmp-model", "1")
    t("rename registered model", c.rename_registered_model, "cmp-model", "cmp-renamed")
    t("get renamed model", c.get_registered_model, "cmp-renamed")
    t("delete registered model", c.delete_registered_model, "cmp-renamed")
    t("get deleted registered model", c.get_registered_model, "cmp-renamed")


class Doubler:
    """A tiny pyfunc model (no TensorFlow): what ``log_model`` and ``load_model`` move."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return [[2 * x for x in row] for row in model_input]


def logged_pyfunc_model(t: Transcript, run_id: str) -> None:
    """``log_model`` (MLflow 2: run artifacts and runs/log-model; MLflow 3: a logged model),
    ``register_model("runs:/…")`` and ``pyfunc.load_model("models:/…")`` through the server."""
    import mlflow
    from mlflow.pyfunc import PythonModel

    model = type("DoublerModel", (Doubler, PythonModel), {})()
    where = {"name": "pymodel"} if mlflow.__version__ >= "3" else {"artifact_path": "pymodel"}

    def log_model() -> dict[str, Any]:
        with mlflow.start_run(run_id=run_id):
            info = mlflow.pyfunc.log_model(python_model=model, **where)
        return {"model_uri": info.model_uri, "run_id": info.run_id, "flavors": sorted(info.flavors)}

    t("log a pyfunc model", log_model)
    t("register it", mlflow.register_model, f"runs:/{run_id}/pymodel", "cmp-py")
    loaded = t("load it by version", mlflow.pyfunc.load_model, "models:/cmp-py/1")
    t.steps["its predictions"] = loaded.predict([[1.0, 2.0]]) if loaded else None
    t("get the run that logged it", t.client.get_run, run_id)


#: Large-file uploads in parts (MLflow's multipart upload through the artifact proxy; a server
#: that cannot takes the whole file instead, so both answer the same).
MULTIPART = {
    "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "true",
    "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE": str(1 << 20),
    "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": str(1 << 20),
}


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _contents(root: Path) -> list[tuple[str, str]]:
    """The model's files below ``root`` as (path, sha256); MLflow 2's client adds a
    ``registered_model_meta`` of its own to what it downloads by models:/ URI."""
    import hashlib

    return sorted(
        (p.relative_to(root).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
        for p in root.rglob("*")
        if p.is_file() and p.name != "registered_model_meta"
    )


def _fresh(path: Path) -> Path:
    path.mkdir(parents=True)
    return path
