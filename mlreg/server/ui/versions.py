"""A model version: signature, input example, requirements, digest, lineage, files, the
commands that use it, and its actions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import Response

from mlreg.errors import InvalidInput, MlregError, NotFound
from mlreg.models.signature import format_shape
from mlreg.registry.entities import ModelVersion, Stage, VersionStatus
from mlreg.registry.service import RegistryService
from mlreg.server import permissions as perm
from mlreg.server.permissions import Level
from mlreg.server.routes.registry import registry
from mlreg.server.routes.tracking import tracking
from mlreg.server.ui.format import shell
from mlreg.server.ui.home import server_url
from mlreg.server.ui.pages import action, done, field, link, page, render, return_to
from mlreg.server.ui.previews import Preview, preview
from mlreg.store.validation import validate_version
from mlreg.tracking.entities import Run

#: A serving example up to this size goes into the curl command itself.
INLINE_EXAMPLE = 1000
SERVING_EXAMPLE = "serving_input_example.json"
REQUIREMENTS = "requirements.txt"


@dataclass(frozen=True)
class SpecRow:
    name: str
    kind: str
    type: str
    shape: str
    required: str


def spec_rows(specs: list[dict[str, Any]] | None) -> list[SpecRow]:
    """A signature's inputs, outputs or params (as the registry stores them) as table rows."""
    rows = []
    for spec in specs or []:
        name = str(spec.get("name") or "(unnamed)")
        if spec.get("type") == "tensor":
            tensor = spec.get("tensor-spec") or {}
            shape = tensor.get("shape")
            rows.append(
                SpecRow(
                    name,
                    "tensor",
                    str(tensor.get("dtype", "?")),
                    format_shape(shape) if shape else "()",
                    "yes",
                )
            )
        elif "default" in spec:  # a param
            shape = spec.get("shape")
            rows.append(
                SpecRow(
                    name,
                    "param",
                    str(spec.get("type", "?")),
                    format_shape(shape) if shape else "scalar",
                    f"default {json.dumps(spec.get('default'))}",
                )
            )
        else:
            required = spec.get("required", True)
            rows.append(SpecRow(name, "column", str(spec.get("type", "?")), "", _yes(required)))
    return rows


def _yes(value: Any) -> str:
    return "yes" if value else "no"


@dataclass(frozen=True)
class Commands:
    python: str
    serve: str
    build: str
    fetch_example: str | None
    #: None when the version saved no serving example.
    curl: str | None


def commands(version: ModelVersion, base: str, example: str | None) -> Commands:
    """Ready-to-copy commands for ``version`` (``base``: this server's URL; ``example``: the
    saved serving example, inlined into curl when it is small)."""
    uri = version.uri
    image = f"{version.name.lower()}:{version.version}"
    python = (
        f"from mlreg import pyfunc\n\nmodel = pyfunc.load_model({json.dumps(uri)})\n"
        "predictions = model.predict(data)  # checked against the signature"
    )
    post = ["curl", "-s", "-X", "POST", "http://127.0.0.1:8080/invocations"]
    post += ["-H", "Content-Type: application/json"]
    fetch = curl = None
    if example is not None and len(example) <= INLINE_EXAMPLE:
        curl = shell(*post, "-d", example.strip())
    elif example is not None:
        url = f"{base}/api/v1/models/{version.name}/versions/{version.version}/files/"
        fetch = shell("curl", "-s", "-o", SERVING_EXAMPLE, url + SERVING_EXAMPLE)
        curl = shell(*post, "-d", f"@{SERVING_EXAMPLE}")
    return Commands(
        python=python,
        serve=shell("mlreg", "serve", "-m", uri, "--port", "8080"),
        build=shell("mlreg", "build-docker", "-m", uri, "-n", image),
        fetch_example=fetch,
        curl=curl,
    )


def read_file(service: RegistryService, version: ModelVersion, path: str) -> Preview | None:
    try:
        return preview(path, lambda a, b: service.artifacts.open_file(version, path, a, b))
    except NotFound:
        return None


def source_run(run_id: str | None) -> tuple[Run | None, str | None]:
    """The run a version came from, or why it cannot be shown."""
    if not run_id:
        return None, None
    try:
        return tracking().get_run(run_id), None
    except NotFound:
        return None, f"run {run_id} no longer exists"
    except MlregError as e:
        return None, e.message


@page(
    "/models/<name>/versions/<version>",
    permission=perm.model(Level.READ),
    summary="A version: signature, input example, requirements, digest, lineage to its run, "
    "files, and the commands that load, serve and package it.",
)
def version(name: str, version: str) -> Response:
    service = registry()
    found = service.get_model_version(name, validate_version(version))
    files, mlmodel, requirements, example, serving = [], None, None, None, None
    if found.status is VersionStatus.READY:
        files = service.artifacts.list_files(found)
        mlmodel = read_file(service, found, "MLmodel")
        requirements = read_file(service, found, REQUIREMENTS)
        info = mlmodel.model.get_input_example_info() if mlmodel and mlmodel.model else None
        example_path = (info or {}).get("artifact_path")
        if isinstance(example_path, str):
            example = read_file(service, found, example_path)
        serving = read_file(service, found, SERVING_EXAMPLE)
    run, run_note = source_run(found.run_id)
    signature = found.signature or {}
    return render(
        "version.html",
        section="models",
        v=found,
        files=files,
        mlmodel=mlmodel,
        requirements=requirements,
        example=example,
        inputs=spec_rows(signature.get("inputs")),
        outputs=spec_rows(signature.get("outputs")),
        params=spec_rows(signature.get("params")),
        run=run,
        run_note=run_note,
        commands=commands(found, server_url(), (serving.raw or serving.text) if serving else None),
        server_url=server_url(),
        stages=[s.value for s in Stage],
        VersionStatus=VersionStatus,
    )


# --- actions ---------------------------------------------------------------------------------


def _here(name: str, version: int) -> str:
    return return_to(link("version", name=name, version=version))


@action(
    "/models/<name>/versions/<version>/description",
    permission=perm.model(Level.EDIT),
    summary="Set a version's description.",
)
def describe_version(name: str, version: str) -> Response:
    number = validate_version(version)
    registry().update_model_version(name, number, field("description", required=False) or None)
    return done("Saved the description.", _here(name, number))


@action(
    "/models/<name>/versions/<version>/tags",
    permission=perm.model(Level.EDIT),
    summary="Set a version's tag.",
)
def set_version_tag(name: str, version: str) -> Response:
    number = validate_version(version)
    key = field("key")
    registry().set_model_version_tag(name, number, key, field("value", required=False))
    return done(f"Set tag {key}.", _here(name, number))


@action(
    "/models/<name>/versions/<version>/tags/delete",
    permission=perm.model(Level.EDIT),
    summary="Remove a version's tag.",
)
def delete_version_tag(name: str, version: str) -> Response:
    number = validate_version(version)
    key = field("key")
    registry().store.set_model_version_tag(name, number, key, None)
    return done(f"Removed tag {key}.", _here(name, number))


@action(
    "/models/<name>/versions/<version>/delete",
    permission=perm.model(Level.MANAGE),
    summary="Delete a version and its files (asks for the version number; numbers are never "
    "reused).",
)
def delete_version(name: str, version: str) -> Response:
    number = validate_version(version)
    confirm = field("confirm", required=False)
    if confirm != str(number):
        raise InvalidInput(
            f"to delete version {number}, type its number in the confirmation field (got "
            f"{confirm!r}); nothing was deleted"
        )
    registry().delete_model_version(name, number)
    return done(f"Deleted version {number} of {name} and its files.", link("model", name=name))
