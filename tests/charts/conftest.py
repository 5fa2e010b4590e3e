"""Chart tests run the real helm binary and kubernetes-validate; nothing about Helm is mocked.

Locally they skip when helm is missing (bash .ci/helm.sh installs it and prints the path to put
in MLREG_HELM); with CI=true a missing tool fails the run instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "mlreg-serving"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
SERVER_CHART = ROOT / "charts" / "mlreg-server"
SERVER_VALUES = sorted((SERVER_CHART / "ci").glob("*.yaml"))
HELM_ENV = "MLREG_HELM"
# The chart's lowest supported Kubernetes (Chart.yaml kubeVersion) and a recent one.
KUBE_VERSIONS = ("1.30.0", "1.34.0")
RENDER_KUBE_VERSION = KUBE_VERSIONS[0]
RELEASE = "mnist"

Manifests = list[dict[str, Any]]


def _missing(what: str, how: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what}; CI must run the chart tests ({how})")
    pytest.skip(f"{what}: {how} to run the chart tests")


def find_helm() -> str:
    configured = os.environ.get(HELM_ENV)
    if configured:
        path = shutil.which(configured)
        if path is None:
            pytest.fail(f"{HELM_ENV}={configured} is not an executable")
        return path
    for candidate in (str(ROOT / ".ci" / "bin" / "helm"), "helm"):
        path = shutil.which(candidate)
        if path:
            return path
    _missing(
        f"no helm binary ({HELM_ENV} unset, none in .ci/bin or on PATH)",
        f"run `export {HELM_ENV}=$(bash .ci/helm.sh)`",
    )
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def helm() -> str:
    return find_helm()


@pytest.fixture(scope="session")
def kubernetes_validate() -> list[str]:
    try:
        import kubernetes_validate  # noqa: F401
    except ImportError:
        _missing("kubernetes-validate is not installed", "pip install -e '.[dev]'")
    return [sys.executable, "-m", "kubernetes_validate"]


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm, *args], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )


def value_args(values: Iterable[Path] = (), sets: Iterable[str] = ()) -> list[str]:
    args: list[str] = []
    for path in values:
        args += ["-f", str(path)]
    for item in sets:
        args += ["--set", item]
    return args


def renderer(helm: str, chart: Path) -> Callable[..., Manifests]:
    """helm template RELEASE CHART [-f ...] [--set ...] -> the parsed documents (cached)."""
    cache: dict[tuple[Any, ...], Manifests] = {}

    def _render(*values: Path, sets: Iterable[str] = ()) -> Manifests:
        key = (values, tuple(sets))
        if key not in cache:
            result = run_helm(
                helm,
                "template",
                RELEASE,
                str(chart),
                "--namespace",
                "ml",
                "--kube-version",
                RENDER_KUBE_VERSION,
                *value_args(values, sets),
            )
            assert result.returncode == 0, result.stderr
            cache[key] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        return cache[key]

    return _render


@pytest.fixture(scope="session")
def render(helm: str) -> Callable[..., Manifests]:
    """The serving chart, rendered."""
    return renderer(helm, CHART)


@pytest.fixture(scope="session")
def render_server(helm: str) -> Callable[..., Manifests]:
    """The server chart, rendered."""
    return renderer(helm, SERVER_CHART)


def only(manifests: Manifests, kind: str) -> dict[str, Any]:
    found = [m for m in manifests if m["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {[m['metadata']['name'] for m in found]}"
    return found[0]


def kinds(manifests: Manifests) -> set[str]:
    return {m["kind"] for m in manifests}
