"""Why a build or a download failed: the last lines of its output and one line of advice.

pip says what went wrong in its last lines (``ERROR: No matching distribution found for
...``), after retries and warnings that say *why* (a connection refused, a certificate
refused); the advice is chosen from the whole output, the shown lines are its end.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

TAIL_LINES = 12
_NETWORK = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name "
    r"resolution|Name or service not known|Network is unreachable|No route to host|Connection "
    r"refused|ConnectTimeoutError|Read timed out|ProxyError"
)
_CERT = re.compile(r"CERTIFICATE_VERIFY_FAILED|SSLCertVerificationError|SSLError")
_NOT_FOUND = re.compile(r"No matching distribution found for (?P<req>.+?)\s*$")
_CONFLICT = re.compile(r"ResolutionImpossible|conflicting dependencies")


def tail(lines: Sequence[str], n: int = TAIL_LINES) -> list[str]:
    """The last ``n`` non-blank lines, plus any earlier ``ERROR:`` line (pip's verdicts)."""
    kept = [line.rstrip() for line in lines if line.strip()]
    last = kept[-n:]
    earlier_errors = [line for line in kept[:-n] if line.lstrip().startswith("ERROR:")]
    return [*earlier_errors[-n:], *last]


def _cause(lines: Sequence[str]) -> tuple[str, str]:
    text = "\n".join(lines)
    if _NETWORK.search(text):
        return "network", ""
    if _CERT.search(text):
        return "cert", ""
    for line in reversed(lines):
        if match := _NOT_FOUND.search(line):
            return "missing", match["req"]
    if _CONFLICT.search(text):
        return "conflict", ""
    return "", ""


def build_advice(lines: Sequence[str], *, offline: bool, model_uri: str) -> str | None:
    """One line for the common causes of a failed install inside an image build."""
    cause, req = _cause(lines)
    wheelhouse = f"`mlreg wheelhouse -m {model_uri} -d DIR`"
    if cause == "network":
        return (
            "The build cannot reach a package index: build offline with --wheelhouse DIR "
            f"--offline after {wheelhouse}, or pass --pip-index-url of an index it can reach."
        )
    if cause == "cert":
        return (
            "pip in the build does not trust the index's certificate: pass --pip-cert with "
            "the CA bundle that signed it."
        )
    if cause == "missing" and offline:
        return f"The wheelhouse has no wheel of {req} for this image: refill it with {wheelhouse}."
    if cause == "missing":
        return (
            f"No index the build reaches has a wheel of {req} for this image: make a wheelhouse "
            f"with {wheelhouse} and build with --wheelhouse DIR --offline."
        )
    if cause == "conflict":
        return (
            "The model's requirements conflict with each other or with mlreg's (pip's lines "
            "above name them): fix the model's requirements.txt."
        )
    return None


def download_advice(lines: Sequence[str], target: str) -> str | None:
    """One line for the common causes of a failed ``pip download`` on the host."""
    cause, req = _cause(lines)
    if cause == "network":
        return (
            "pip on this machine cannot reach its index: check `pip config list` (index-url, "
            "proxy, cert)."
        )
    if cause == "cert":
        return (
            "pip on this machine does not trust its index's certificate: set cert in pip.conf "
            "(or PIP_CERT)."
        )
    if cause == "missing":
        return (
            f"The index has no wheel of {req} for {target}: if it has only a source "
            "distribution, build the wheel on a matching machine (`pip wheel NAME -w DIR`) and "
            "run this again, or choose another --python-version/--platform."
        )
    if cause == "conflict":
        return "The model's requirements conflict with each other or with mlreg's."
    return None


def explain(headline: str, lines: Sequence[str], advice: str | None, log: Path | None) -> str:
    """The error message: the headline, the output's last lines, the advice, the log's path."""
    parts = [headline, *(f"  | {line}" for line in tail(lines))]
    if advice:
        parts.append(f"  {advice}")
    if log is not None:
        parts.append(f"  Full log: {log}")
    return "\n".join(parts)
