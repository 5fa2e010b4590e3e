"""MLflow's artifact proxy (``/mlflow-artifacts/…``): clients upload and download the files of
runs and logged models through the server, and download registered versions, with the same
streaming, ranges, size limits and path rules as ``/api/v1``.

Multipart uploads (what MLflow's clients use for large files when ``/server-info`` says so):
``mpu/create`` hands out an upload id and a URL per part on this server, the parts are PUT
there, ``mpu/complete`` joins them in order (checking each part's ETag) into the artifact,
``mpu/abort`` throws them away. The upload id is the capability to send parts: random, and
good for that one upload.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from flask import Response, current_app, request

from mlreg.errors import ArtifactNotFound, InvalidInput, PayloadTooLarge
from mlreg.server import permissions as perm
from mlreg.server.mlflow import paths
from mlreg.server.mlflow.paths import Location
from mlreg.server.mlflow.runs import listing
from mlreg.server.mlflow.table import (
    INT64,
    PREFIXES,
    STRING,
    as_int,
    message,
    mlflow_api,
    repeated,
)
from mlreg.server.permissions import Level
from mlreg.server.routes import services
from mlreg.server.routes.registry import registry
from mlreg.server.routes.tracking import receive, receive_owner_artifact, tracking
from mlreg.server.streams import send_stream
from mlreg.store.files import CHUNK
from mlreg.store.validation import safe_relpath

MPU_DIR = "mpu"
STATE = "upload.json"
MAX_PARTS = 10_000
#: Uploads nobody completed are thrown away after this long (when the next one starts).
STALE_UPLOAD_S = 24 * 3600
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


def _locate(artifact_path: str) -> Location:
    return paths.locate(artifact_path, tracking(), registry())


# --- listing, download, upload, delete ------------------------------------------------------


@mlflow_api.route(
    "GET",
    "/mlflow-artifacts/artifacts",
    permission=perm.artifact_path(Level.READ, ref=perm.message("path", admin_when_absent=True)),
    summary="The entries directly under a path (names relative to it; a file or a missing "
    "path lists as nothing).",
    request_message=message({"path": STRING}),
)
def list_artifacts(msg: dict[str, Any]) -> dict[str, Any]:
    location = _locate(msg.get("path") or "")
    if location.version is not None:
        return {"files": _version_listing(location)}
    return {"files": listing(tracking(), location.owner, location.path, relative_to_root=False)}


def _version_listing(location: Location) -> list[dict[str, Any]]:
    assert location.version is not None
    prefix = f"{location.path}/" if location.path else ""
    children: dict[str, dict[str, Any]] = {}
    for f in registry().artifacts.list_files(location.version):
        if not f.path.startswith(prefix):
            continue
        name, _, below = f.path[len(prefix) :].partition("/")
        entry = {"path": name, "is_dir": bool(below)}
        if not below and f.size is not None:
            entry["file_size"] = f.size
        children.setdefault(name, entry)
    return [children[name] for name in sorted(children)]


@mlflow_api.route(
    "GET",
    "/mlflow-artifacts/artifacts/<path:artifact_path>",
    permission=perm.artifact_path(Level.READ),
    summary="Download one file (HTTP Range requests supported).",
    raw_response=True,
)
def download_artifact(artifact_path: str) -> Response:
    location = _locate(artifact_path)
    if location.path is None:
        raise ArtifactNotFound(f"{artifact_path!r} is a directory; name a file")
    if location.version is not None:
        version, path = location.version, location.path
        return send_stream(
            lambda start, end: registry().artifacts.open_file(version, path, start, end),
            path,
            etag=version.digest,
        )
    service, owner, path = tracking(), paths.writable(location), location.path
    return send_stream(lambda start, end: service.artifacts.open(owner, path, start, end), path)


@mlflow_api.route(
    "PUT",
    "/mlflow-artifacts/artifacts/<path:artifact_path>",
    permission=perm.artifact_path(Level.EDIT),
    summary="Upload one file of a run or a logged model (the body is its bytes, streamed).",
    raw_body="application/octet-stream",
)
def upload_artifact(artifact_path: str) -> dict[str, Any]:
    location = _locate(artifact_path)
    owner = paths.writable(location)
    if location.path is None:
        raise InvalidInput("name the file to upload below the artifact root")
    receive_owner_artifact(tracking(), owner, location.path)
    return {}


@mlflow_api.route(
    "DELETE",
    "/mlflow-artifacts/artifacts/<path:artifact_path>",
    permission=perm.artifact_path(Level.EDIT),
    summary="Remove a file or directory of a run or a logged model.",
)
def delete_artifact(artifact_path: str) -> dict[str, Any]:
    location = _locate(artifact_path)
    owner = paths.writable(location)
    if location.path is None:
        raise InvalidInput("name a file or directory below the artifact root to delete")
    tracking().artifacts.delete(owner, safe_relpath(location.path))
    return {}


@mlflow_api.route(
    "GET",
    "/mlflow-artifacts/presigned/<path:artifact_path>",
    permission=perm.artifact_path(Level.READ),
    summary="Where to download a file in ranges: this server's own URL for it, and its size.",
)
def presigned_download(artifact_path: str) -> dict[str, Any]:
    location = _locate(artifact_path)
    if location.path is None:
        raise ArtifactNotFound(f"{artifact_path!r} is a directory; name a file")
    if location.version is not None:
        size = registry().artifacts.open_file(location.version, location.path, 0, 0).size
    else:
        size = tracking().artifacts.open(paths.writable(location), location.path, 0, 0).size
    url = request.host_url.rstrip("/") + request.path.replace(
        "/mlflow-artifacts/presigned/", "/mlflow-artifacts/artifacts/", 1
    )
    return {"url": url, "headers": {}, "file_size": size}


# --- multipart uploads ----------------------------------------------------------------------


def _uploads() -> Path:
    return services().staging / MPU_DIR


def _upload_dir(upload_id: str) -> Path:
    if not _UPLOAD_ID.fullmatch(upload_id or ""):
        raise InvalidInput(f"invalid upload_id {upload_id!r}")
    target = _uploads() / upload_id
    if not (target / STATE).is_file():
        raise ArtifactNotFound(f"no multipart upload {upload_id!r} (completed, aborted or expired)")
    return target


def _state(upload_dir: Path) -> dict[str, Any]:
    return json.loads((upload_dir / STATE).read_text())


def _forget_stale() -> None:
    root = _uploads()
    if not root.is_dir():
        return
    cutoff = time.time() - STALE_UPLOAD_S
    for entry in root.iterdir():
        if entry.is_dir() and entry.stat().st_mtime < cutoff:
            shutil.rmtree(entry, ignore_errors=True)


def _file_name(msg: dict[str, Any]) -> str:
    """The name of the file being uploaded (MLflow's clients send their local path)."""
    name = os.path.basename(str(msg.get("path") or "").replace("\\", "/"))
    if not name:
        raise InvalidInput("missing value for required field 'path' (the file being uploaded)")
    safe_relpath(name)
    return name


@mlflow_api.route(
    "POST",
    "/mlflow-artifacts/mpu/create/<path:artifact_path>",
    permission=perm.artifact_path(Level.EDIT),
    summary="Start a multipart upload of one file into a directory of a run or logged model: "
    "an upload id and a URL per part.",
    request_message=message({"path": STRING, "num_parts": INT64}),
)
def create_multipart_upload(artifact_path: str, msg: dict[str, Any]) -> dict[str, Any]:
    paths.writable(_locate(artifact_path))
    name = _file_name(msg)
    parts = as_int(msg, "num_parts", 1, 1, MAX_PARTS)
    _forget_stale()
    upload_id = uuid.uuid4().hex
    target = _uploads() / upload_id
    target.mkdir(parents=True)
    state = {"artifact_path": artifact_path.strip("/"), "file": name, "num_parts": parts}
    (target / STATE).write_text(json.dumps(state))
    base = f"{request.host_url.rstrip('/')}{PREFIXES[str(request.blueprint)]}/mlflow-artifacts"
    credentials = [
        {"url": f"{base}/mpu/parts/{upload_id}/{n}", "part_number": n, "headers": {}}
        for n in range(1, parts + 1)
    ]
    return {"upload_id": upload_id, "credentials": credentials}


@mlflow_api.route(
    "PUT",
    "/mlflow-artifacts/mpu/parts/<upload_id>/<int:part_number>",
    # Authorized by the upload id that mpu/create handed to a caller allowed to write there.
    permission=perm.PUBLIC,
    summary="Upload one part of a multipart upload (answers its ETag).",
    raw_body="application/octet-stream",
)
def put_upload_part(upload_id: str, part_number: int) -> Response:
    upload_dir = _upload_dir(upload_id)
    if not 1 <= part_number <= _state(upload_dir)["num_parts"]:
        raise InvalidInput(f"part_number {part_number} is not a part of upload {upload_id}")
    part = upload_dir / f"part-{part_number:05d}"
    limit = current_app.config["MLREG_MAX_UPLOAD_BYTES"]
    receive(part, limit)
    etag = _etag(part)
    response = Response(status=200)
    response.headers["ETag"] = f'"{etag}"'
    return response


def _etag(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@mlflow_api.route(
    "POST",
    "/mlflow-artifacts/mpu/complete/<path:artifact_path>",
    permission=perm.artifact_path(Level.EDIT),
    summary="Join the parts of a multipart upload, in order, into the artifact.",
    request_message=message(
        {
            "path": STRING,
            "upload_id": STRING,
            "parts": repeated(message({"part_number": INT64, "etag": STRING, "url": STRING})),
        },
        ["upload_id"],
    ),
)
def complete_multipart_upload(artifact_path: str, msg: dict[str, Any]) -> dict[str, Any]:
    location = _locate(artifact_path)
    owner = paths.writable(location)
    upload_dir = _upload_dir(str(msg.get("upload_id")))
    state = _state(upload_dir)
    if (state["artifact_path"], state["file"]) != (artifact_path.strip("/"), _file_name(msg)):
        raise InvalidInput(
            f"upload {msg['upload_id']} is of {state['file']!r} into {state['artifact_path']!r}"
        )
    sent = {
        int(p.get("part_number") or 0): str(p.get("etag") or "") for p in msg.get("parts") or []
    }
    if sorted(sent) != list(range(1, state["num_parts"] + 1)):
        raise InvalidInput(
            f"upload {msg['upload_id']} has {state['num_parts']} parts; the list names "
            f"{sorted(sent)}"
        )
    for number in range(1, state["num_parts"] + 1):
        part = upload_dir / f"part-{number:05d}"
        if not part.is_file():
            raise InvalidInput(f"part {number} of upload {msg['upload_id']} never arrived")
        if sent[number].strip('"') != _etag(part):
            raise InvalidInput(f"part {number} of upload {msg['upload_id']}: ETag mismatch")
    limit = current_app.config["MLREG_MAX_UPLOAD_BYTES"]
    with services().scratch() as scratch:
        joined = scratch / state["file"]
        size = 0
        with joined.open("wb") as out:
            for number in range(1, state["num_parts"] + 1):
                part = upload_dir / f"part-{number:05d}"
                size += part.stat().st_size
                if size > limit:
                    raise PayloadTooLarge.body(size, limit, "MLREG_MAX_UPLOAD_BYTES")
                with part.open("rb") as f:
                    shutil.copyfileobj(f, out, CHUNK)
        tracking().log_owner_file(owner, joined, location.path)
    shutil.rmtree(upload_dir, ignore_errors=True)
    return {}


@mlflow_api.route(
    "POST",
    "/mlflow-artifacts/mpu/abort/<path:artifact_path>",
    permission=perm.artifact_path(Level.EDIT),
    summary="Throw away the parts of a multipart upload.",
    request_message=message({"path": STRING, "upload_id": STRING}, ["upload_id"]),
)
def abort_multipart_upload(artifact_path: str, msg: dict[str, Any]) -> dict[str, Any]:
    paths.writable(_locate(artifact_path))
    upload_dir = _upload_dir(str(msg.get("upload_id")))
    if _state(upload_dir)["artifact_path"] != artifact_path.strip("/"):
        raise InvalidInput(f"upload {msg['upload_id']} is not into {artifact_path!r}")
    shutil.rmtree(upload_dir, ignore_errors=True)
    return {}
