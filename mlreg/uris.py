"""Model URIs: local paths and ``file://`` here; store URIs through the table :data:`SCHEMES`.

``models:/`` and ``runs:/`` URIs need a store, which lives above this module in the
dependency order. :data:`SCHEMES` names the function that resolves each scheme as
``"module:function"``; the module is imported on the first URI of that scheme, so
resolving a path imports no database code, and nothing registers itself on import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from mlreg.errors import InvalidInput, ModelNotFound


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model URI points: a local directory holding MLmodel, and what it is."""

    path: Path
    uri: str
    name: str | None = None
    version: int | None = None
    stage: str | None = None
    digest: str | None = None


@dataclass(frozen=True)
class ModelRef:
    """What a URI names right now, without fetching its files: which version, which bytes."""

    name: str
    version: int
    digest: str | None = None


Resolver = Callable[[str], ResolvedModel]
Lookup = Callable[[str], ModelRef]

#: URI scheme -> "module:function" that resolves it with the process's default store.
SCHEMES: dict[str, str] = {
    "models": "mlreg.registry.client:resolve_registry_uri",
    "runs": "mlreg.tracking.fluent:resolve_run_uri",
}
#: URI scheme -> "module:function" that says which version a URI of it names now (cheaply:
#: a query, no download). Only these URIs can move: a stage, an alias, "latest".
LOOKUPS: dict[str, str] = {
    "models": "mlreg.registry.client:registry_version_of",
}


def resolver_for(scheme: str) -> Resolver | None:
    """The function that resolves URIs of ``scheme``, or None if no store handles it."""
    target = SCHEMES.get(scheme)
    if target is None:
        return None
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


def movable(uri: str) -> bool:
    """Can this URI name another version later (a stage, an alias, "latest"), not a number?"""
    if scheme_of(uri) not in LOOKUPS:
        return False
    rest = uri.split(":/", 1)[-1].lstrip("/")
    return "@" in rest or not rest.rpartition("/")[2].isdigit()


def current_version(uri: str) -> ModelRef:
    """Which version a movable model URI names right now (follow mode polls this)."""
    target = LOOKUPS.get(scheme_of(uri))
    if target is None:
        raise InvalidInput(
            f"{uri!r} cannot move: only registry URIs (models:/name/<stage>, models:/name@alias, "
            "models:/name/latest) name a different version over time"
        )
    module, _, function = target.partition(":")
    lookup: Lookup = getattr(importlib.import_module(module), function)
    return lookup(uri)


def scheme_of(uri: str) -> str:
    parsed = urlparse(uri)
    # A one-letter scheme is a Windows drive, not a URI scheme.
    return parsed.scheme if len(parsed.scheme) > 1 else ""


def resolve_model_uri(uri: str) -> ResolvedModel:
    """Turn any supported model URI into a local model directory."""
    if not uri or not str(uri).strip():
        raise InvalidInput("model URI is empty")
    uri = str(uri)
    scheme = scheme_of(uri)
    if scheme in ("", "file"):
        return ResolvedModel(path=local_path(uri), uri=uri)
    resolver = resolver_for(scheme)
    if resolver is None:
        supported = ", ".join(sorted({"file", *(f"{s}:/" for s in SCHEMES)}))
        raise InvalidInput(
            f"unsupported model URI scheme {scheme!r} in {uri!r}; "
            f"supported: {supported} and local paths"
        )
    return resolver(uri)


def local_path(uri: str) -> Path:
    """The model directory named by a path or ``file://`` URI; it must hold an MLmodel file."""
    if uri.startswith("file:"):
        parsed = urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise InvalidInput(
                f"file URI {uri!r} names a remote host; only local files are supported"
            )
        path = Path(unquote(parsed.path))
    else:
        path = Path(uri).expanduser()
    if not path.exists():
        raise ModelNotFound(f"no model at {path}: the path does not exist")
    if path.is_file() and path.name == "MLmodel":
        path = path.parent
    if not (path / "MLmodel").is_file():
        raise ModelNotFound(f"no model at {path}: the directory has no MLmodel file")
    return path.resolve()
