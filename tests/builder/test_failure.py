"""What a failed build says, and how its progress reads, from the engine's own output."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mlreg.builder import engine, failure
from mlreg.cli.build import TextProgress, _json_progress, _log_file
from mlreg.errors import BuildError

URI = "models:/mnist/Production"
NOT_FOUND = [
    "Looking in indexes: http://127.0.0.1:9/simple",
    "ERROR: Could not find a version that satisfies the requirement pandas>=2.0 (from mlreg) "
    "(from versions: none)",
    "ERROR: No matching distribution found for pandas>=2.0",
]
NO_NETWORK = [
    "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) "
    "after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection."
    "HTTPSConnection object at 0x7f>: Failed to establish a new connection: [Errno -3] "
    "Temporary failure in name resolution')': /simple/tensorflow-cpu/",
    "ERROR: Could not find a version that satisfies the requirement tensorflow-cpu==2.21.0 "
    "(from versions: none)",
    "ERROR: No matching distribution found for tensorflow-cpu==2.21.0",
]
BAD_CERT = [
    "Could not fetch URL https://mirror.example/simple/numpy/: There was a problem confirming "
    "the ssl certificate: HTTPSConnectionPool(host='mirror.example', port=443): Max retries "
    "exceeded (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] "
    "certificate verify failed')))",
    "ERROR: No matching distribution found for numpy==2.4.6",
]
CONFLICT = [
    "ERROR: Cannot install numpy==1.0 and mlreg==0.1.0 because these package versions have "
    "conflicting dependencies.",
    "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/",
]


@pytest.mark.parametrize(
    ("lines", "offline", "expected"),
    [
        (
            NOT_FOUND,
            True,
            "The wheelhouse has no wheel of pandas>=2.0 for this image: refill it with "
            f"`mlreg wheelhouse -m {URI} -d DIR`.",
        ),
        (
            NOT_FOUND,
            False,
            "No index the build reaches has a wheel of pandas>=2.0 for this image: make a "
            f"wheelhouse with `mlreg wheelhouse -m {URI} -d DIR` and build with --wheelhouse DIR "
            "--offline.",
        ),
        (
            NO_NETWORK,
            False,
            "The build cannot reach a package index: build offline with --wheelhouse DIR "
            f"--offline after `mlreg wheelhouse -m {URI} -d DIR`, or pass --pip-index-url of an "
            "index it can reach.",
        ),
        (
            BAD_CERT,
            False,
            "pip in the build does not trust the index's certificate: pass --pip-cert with the "
            "CA bundle that signed it.",
        ),
        (
            CONFLICT,
            True,
            "The model's requirements conflict with each other or with mlreg's (pip's lines "
            "above name them): fix the model's requirements.txt.",
        ),
        (["cp: cannot stat 'x': No such file or directory"], False, None),
    ],
    ids=["missing-offline", "missing-online", "no-network", "certificate", "conflict", "other"],
)
def test_build_advice(lines, offline, expected):
    assert failure.build_advice(lines, offline=offline, model_uri=URI) == expected


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            NOT_FOUND,
            "The index has no wheel of pandas>=2.0 for cp311 on manylinux_2_36_x86_64 and "
            "older: if it has only a source distribution, build the wheel on a matching machine "
            "(`pip wheel NAME -w DIR`) and run this again, or choose another "
            "--python-version/--platform.",
        ),
        (
            NO_NETWORK,
            "pip on this machine cannot reach its index: check `pip config list` (index-url, "
            "proxy, cert).",
        ),
        (["Traceback (most recent call last):"], None),
    ],
    ids=["missing", "no-network", "other"],
)
def test_download_advice(lines, expected):
    target = "cp311 on manylinux_2_36_x86_64 and older"
    assert failure.download_advice(lines, target) == expected


def test_tail_keeps_pips_earlier_errors():
    lines = ["ERROR: first verdict", *(f"line {i}" for i in range(20)), "", "  "]
    assert failure.tail(lines, n=3) == ["ERROR: first verdict", "line 17", "line 18", "line 19"]
    assert failure.tail(["a", "b"]) == ["a", "b"]


def test_explain():
    message = failure.explain("it failed", ["x", "ERROR: y"], "Do this.", Path("/tmp/b.log"))
    assert message == "it failed\n  | x\n  | ERROR: y\n  Do this.\n  Full log: /tmp/b.log"
    assert failure.explain("it failed", [], None, None) == "it failed"


# The classic builder's stream for a failing install, chunked as the engine sends it.
STREAM = [
    "Step 1/3 : FROM mlreg-test/python:3.11-bookworm-build AS deps\n",
    " ---> 62ab3a28ab15\n",
    "Step 2/3 : COPY wheels/ /opt/mlreg-build/wheels/\n",
    " ---> Using cache\n ---> c5443decff8a\n",
    "Step 3/3 : RUN set -e;     python3 -m venv /opt/mlreg/venv;     "
    "/opt/mlreg/venv/bin/pip install --no-index --find-links /opt/mlreg-build/wheels "
    "-r /opt/mlreg-build/requirements.txt\n",
    " ---> Running in 14dd41d6123e\n",
    "Looking in links: /opt/mlreg-build/wheels\nProcessing /opt/mlreg-build/wheels/mlreg-0.1.0-",
    "py3-none-any.whl\n",
    "\x1b[91mERROR: Could not find a version that satisfies the requirement pandas>=2.0 (from "
    "mlreg) (from versions: none)\n",
    "\x1b[0m\x1b[91mERROR: No matching distribution found for pandas>=2.0\n",
    "\x1b[0mRemoving intermediate container 14dd41d6123e\n",
]
ERROR = (
    "The command '/bin/sh -c set -e;     python3 -m venv /opt/mlreg/venv;     "
    "/opt/mlreg/venv/bin/pip install --no-index' returned a non-zero code: 1"
)


def test_transcript_of_a_failed_step(tmp_path):
    events: list[engine.BuildEvent] = []
    log = tmp_path / "build.log"
    with log.open("w") as out:
        transcript = engine._Transcript(out, lambda kind, **f: events.append((kind, f)))
        for chunk in STREAM:
            transcript.feed(chunk)
        advise = lambda lines: failure.build_advice(lines, offline=True, model_uri=URI)  # noqa: E731
        error = transcript.failed(ERROR, advise, log)
    assert isinstance(error, BuildError)
    assert error.message == (
        "image build failed at step 3/3 (RUN set -e; python3 -m venv /opt/mlreg/venv; "
        "/opt/mlreg/venv/bin/pip …): exit code 1\n"
        "  | Looking in links: /opt/mlreg-build/wheels\n"
        "  | Processing /opt/mlreg-build/wheels/mlreg-0.1.0-py3-none-any.whl\n"
        "  | ERROR: Could not find a version that satisfies the requirement pandas>=2.0 (from "
        "mlreg) (from versions: none)\n"
        "  | ERROR: No matching distribution found for pandas>=2.0\n"
        "  The wheelhouse has no wheel of pandas>=2.0 for this image: refill it with "
        f"`mlreg wheelhouse -m {URI} -d DIR`.\n"
        f"  Full log: {log}"
    )
    assert [k for k, _ in events] == ["step", "step", "cached", "step", "output", "output",
                                      "output", "output", "failed"]  # fmt: skip
    failed = events[-1][1]
    assert (failed["step"], failed["steps"], failed["error"]) == (3, 3, "exit code 1")
    assert failed["tail"][-1] == "ERROR: No matching distribution found for pandas>=2.0"
    assert failed["log"] == str(log)
    assert transcript.cached == 1
    text = log.read_text()
    assert "\x1b[" not in text and text.endswith(f"ERROR: {ERROR}\n")
    assert "Processing /opt/mlreg-build/wheels/mlreg-0.1.0-py3-none-any.whl\n" in text


def events() -> list[engine.BuildEvent]:
    return [
        engine.BuildEvent("start", 0.0, tag="m:1", network="none", total=363_000_000),
        engine.BuildEvent("context", 0.3, sent=100_000_000, total=363_000_000),
        engine.BuildEvent("context", 2.4, sent=363_000_000, total=363_000_000),
        engine.BuildEvent("step", 2.4, step=1, steps=2, instruction="FROM base AS deps"),
        engine.BuildEvent("cached", 2.4, step=1, steps=2),
        engine.BuildEvent("step", 2.5, step=2, steps=2, instruction="RUN pip install x"),
        engine.BuildEvent("output", 9.0, step=2, steps=2, line="Collecting x"),
    ]


def test_text_progress_in_a_log(capsys):
    progress = TextProgress(tty=False)
    for event in events():
        progress(event)
    assert capsys.readouterr().out == (
        "[   0.0s] building m:1 (build network: none); 363 MB of context to send to the engine\n"
        "[   2.4s] sent the build context to the engine: 363 MB\n"
        "[   2.4s] step 1/2: FROM base AS deps\n"
        "[   2.5s] step 2/2: RUN pip install x\n"
    )


def test_text_progress_on_a_terminal(capsys):
    progress = TextProgress(tty=True)
    for event in events():
        progress(event)
    out = capsys.readouterr().out
    # the upload and the step's output are a status line, rewritten in place
    assert "\r\x1b[K[   0.3s] sending the build context: 100 MB of 363 MB" in out
    assert out.endswith("\r\x1b[K[   9.0s]   Collecting x")
    assert "\r\x1b[K[   2.4s] sent the build context to the engine: 363 MB\n" in out


def test_json_progress(capsys):
    for event in events():
        _json_progress(event)
    lines = [json.loads(line) for line in io.StringIO(capsys.readouterr().out)]
    assert [e["event"] for e in lines] == ["start", "context", "context", "step", "cached", "step"]
    assert lines[0] == {
        "event": "start",
        "elapsed": 0.0,
        "tag": "m:1",
        "network": "none",
        "total": 363_000_000,
    }
    assert lines[3] == {
        "event": "step",
        "elapsed": 2.4,
        "step": 1,
        "steps": 2,
        "instruction": "FROM base AS deps",
    }


def test_log_file_is_kept_only_for_a_failure(tmp_path):
    with _log_file(None, "mlreg-test-") as log:
        log.write_text("all went well\n")
    assert not log.exists()
    with pytest.raises(BuildError), _log_file(None, "mlreg-test-") as log:
        log.write_text("ERROR: it broke\n")
        raise BuildError("it broke")
    assert log.read_text() == "ERROR: it broke\n"
    log.unlink()
    with pytest.raises(BuildError), _log_file(None, "mlreg-test-") as log:
        raise BuildError("refused before anything was written")
    assert not log.exists()
    with _log_file(tmp_path / "logs" / "build.log", "mlreg-test-") as log:
        log.write_text("kept where the user asked\n")
    assert log == tmp_path / "logs" / "build.log" and log.is_file()
