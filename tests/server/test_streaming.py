"""A 2 GB artifact through a real gunicorn server: streamed both ways with the workers' memory
bounded, the same SHA-256 at both ends, and HTTP range requests on the download."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from mlreg.store import StoreSettings
from mlreg.tracking.client import TrackingClient
from tests.server.process import ServerProcess

pytestmark = pytest.mark.slow

SIZE = 2 * 1024**3 + 12345  # past 2 GiB, and not a whole number of chunks
BLOCK = 1 << 20
#: What a worker may grow by while moving the file (it holds one chunk at a time; the rest
#: is the interpreter, the request and the database session).
MEMORY_BOUND = 200 * 1024**2


def rss_kib(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak so far) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


@pytest.fixture(scope="module")
def big_file(tmp_path_factory) -> tuple[Path, str]:
    """A file of SIZE bytes (random blocks, each different) and its SHA-256."""
    path = tmp_path_factory.mktemp("big") / "weights.bin"
    sha = hashlib.sha256()
    seed = os.urandom(BLOCK)
    with path.open("wb") as out:
        written = 0
        i = 0
        while written < SIZE:
            block = (i.to_bytes(8, "big") + seed[8:])[: SIZE - written]
            out.write(block)
            sha.update(block)
            written += len(block)
            i += 1
    yield path, sha.hexdigest()
    path.unlink()


@pytest.fixture(scope="module")
def uploaded(server: ServerProcess, big_file, tmp_path_factory):
    """The file logged as a run artifact through the REST client, with the workers' memory
    measured around the upload: (tracking client, run, baseline RSS, peak RSS) per worker."""
    path, _ = big_file
    home = tmp_path_factory.mktemp("client")
    tracking = TrackingClient(StoreSettings(server.url, home / "unused", "alice", home=home))
    run = tracking.create_run(None)
    baseline = {pid: rss_kib(pid, "VmRSS") for pid in server.worker_pids()}
    tracking.log_artifact(run.info.run_id, path, "model")
    peaks = {pid: rss_kib(pid, "VmHWM") for pid in baseline}
    yield tracking, run.info, baseline, peaks
    tracking.close()


def test_upload_keeps_the_workers_memory_bounded(uploaded, server):
    _, _, baseline, peaks = uploaded
    growth = {pid: (peaks[pid] - baseline[pid]) * 1024 for pid in baseline}
    print(f"worker RSS growth during the upload: {sorted(growth.values())} bytes")
    assert max(growth.values()) < MEMORY_BOUND, growth
    stored = server.artifacts.rglob("weights.bin")
    assert [p.stat().st_size for p in stored] == [SIZE]
    assert list(server.staging.iterdir()) == []


def test_download_streams_the_same_bytes_with_memory_bounded(uploaded, server, big_file):
    tracking, run, _, _ = uploaded
    _, expected = big_file
    baseline = {pid: rss_kib(pid, "VmRSS") for pid in server.worker_pids()}
    before_peak = {pid: rss_kib(pid, "VmHWM") for pid in baseline}
    stream = tracking.artifacts.open(run, "model/weights.bin")
    assert (stream.start, stream.end, stream.size) == (0, SIZE, SIZE)
    sha = hashlib.sha256()
    received = 0
    for chunk in stream.chunks:
        sha.update(chunk)
        received += len(chunk)
    assert received == SIZE
    assert sha.hexdigest() == expected
    for pid in baseline:
        peak = rss_kib(pid, "VmHWM")
        # A new peak, if any, may only be the baseline plus the bound.
        assert peak == before_peak[pid] or (peak - baseline[pid]) * 1024 < MEMORY_BOUND, (
            pid,
            baseline[pid],
            peak,
        )


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 100),
        ("bytes=1073741824-1073742847", 1 << 30, (1 << 30) + 1024),
        ("bytes=-100", SIZE - 100, SIZE),
        (f"bytes={SIZE - 10}-", SIZE - 10, SIZE),
    ],
)
def test_range_requests(uploaded, server, big_file, header, start, end):
    _, run, _, _ = uploaded
    path, _ = big_file
    answer = server.http.get(
        f"{server.api}/runs/{run.run_id}/artifacts/model/weights.bin",
        headers={"Range": header},
        timeout=60,
    )
    assert answer.status_code == 206
    assert answer.headers["Content-Range"] == f"bytes {start}-{end - 1}/{SIZE}"
    assert answer.headers["Content-Length"] == str(end - start)
    with path.open("rb") as f:
        f.seek(start)
        assert answer.content == f.read(end - start)


def test_range_past_the_end_is_416(uploaded, server):
    _, run, _, _ = uploaded
    answer = server.http.get(
        f"{server.api}/runs/{run.run_id}/artifacts/model/weights.bin",
        headers={"Range": f"bytes={SIZE}-"},
        timeout=60,
    )
    assert answer.status_code == 416
    assert answer.headers["Content-Range"] == f"bytes */{SIZE}"
