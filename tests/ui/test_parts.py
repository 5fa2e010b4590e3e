"""The UI's small parts: the vendored chart library, value formatting, previews, settings."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest

from mlreg.errors import InvalidInput
from mlreg.server.settings import ServerSettings
from mlreg.server.ui import format as fmt
from mlreg.server.ui.pages import STATIC, safe_next
from mlreg.server.ui.previews import looks_like_text, preview
from mlreg.store.files import Stream

VENDOR = STATIC / "vendor" / "uplot"


def test_the_vendored_chart_library_is_the_one_the_manifest_names():
    manifest = json.loads((VENDOR / "VENDOR.json").read_text())
    assert manifest["package"] == "uplot" and manifest["integrity"].startswith("sha512-")
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    script = (VENDOR / "uPlot.iife.min.js").read_text()
    assert script.startswith(f"/*! https://github.com/leeoniya/uPlot (v{manifest['version']}) */")
    assert (VENDOR / "LICENSE").read_text().startswith("The MIT License (MIT)")


def test_pages_load_nothing_from_other_sites():
    for template in (STATIC.parent / "templates").glob("*.html"):
        text = template.read_text()
        assert "http://" not in text.replace("http://127.0.0.1:8080", ""), template.name
        assert "https://" not in text, template.name


NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: fmt.when(NOW), "2026-06-01 12:00:00 UTC"),
        (lambda: fmt.when(1_780_315_200_000), "2026-06-01 12:00:00 UTC"),
        (lambda: fmt.when(None), "—"),
        (lambda: fmt.ago(NOW - timedelta(seconds=20), NOW), "just now"),
        (lambda: fmt.ago(NOW - timedelta(minutes=5), NOW), "5 min ago"),
        (lambda: fmt.ago(NOW - timedelta(hours=3, minutes=59), NOW), "3 h ago"),
        (lambda: fmt.ago(NOW - timedelta(days=12), NOW), "12 days ago"),
        (lambda: fmt.duration(0, 4200), "4.2s"),
        (lambda: fmt.duration(0, 185_000), "3m 05s"),
        (lambda: fmt.duration(0, 3_720_000), "1h 02m"),
        (lambda: fmt.duration(0, None), "—"),
        (lambda: fmt.size(999), "999 B"),
        (lambda: fmt.size(1_500), "1.5 kB"),
        (lambda: fmt.size(2_345_000_000), "2.3 GB"),
        (lambda: fmt.number(0.123456789), "0.123457"),
        (lambda: fmt.number(float("nan")), "NaN"),
        (lambda: fmt.number(float("-inf")), "-Infinity"),
        (lambda: fmt.number(3), "3"),
        (lambda: fmt.shell("curl", "-d", "{'a': 1}"), "curl -d '{'\"'\"'a'\"'\"': 1}'"),
    ],
    ids=lambda v: "" if callable(v) else v,
)
def test_formatting(call, expected):
    assert call() == expected


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        ("/models/cnn?x=1", True),
        ("/", True),
        ("//evil.example/", False),
        ("/\\evil.example", False),
        ("https://evil.example/", False),
        ("/models\r\nSet-Cookie: a=b", False),
        ("", False),
        (None, False),
    ],
)
def test_only_paths_on_this_server_are_followed(target, kept):
    assert safe_next(target) == (target if kept else None)


def stream_of(data: bytes):
    def open_range(start: int, end: int | None) -> Stream:
        stop = len(data) if end is None else min(end, len(data))
        return Stream(len(data), start, stop, iter([data[start:stop]]))

    return open_range


@pytest.mark.parametrize(
    ("path", "data", "kind", "note"),
    [
        ("a/b.png", b"\x89PNG....", "image", ""),
        ("logo.svg", b"<svg onload=alert(1)/>", "text", ""),
        ("x.json", b'{"a": [1, 2]}', "json", ""),
        ("x.json", b"{not json", "text", "not valid JSON; shown as text"),
        ("c.yaml", b"a: 1\n", "yaml", ""),
        ("weights.bin", bytes(range(256)) * 4, "binary", ""),
        ("README", "héllo wörld".encode(), "text", ""),
        ("MLmodel", b"flavors: 3", "mlmodel", "not a valid MLmodel file"),
        ("MLmodel", b"- a list", "mlmodel", "cannot be read as an MLmodel file"),
    ],
    ids=["png", "svg-as-text", "json", "bad-json", "yaml", "binary", "utf8", "bad-mlmodel",
         "mlmodel-list"],
)  # fmt: skip
def test_previews(path, data, kind, note):
    shown = preview(path, stream_of(data))
    assert shown.kind == kind
    assert shown.size == len(data)
    assert shown.note.startswith(note)


def test_a_large_file_is_previewed_from_its_start():
    shown = preview("big.txt", stream_of(b"x" * 1_000_000))
    assert shown.truncated and len(shown.text) == 256 * 1024 and shown.size == 1_000_000


def test_a_multibyte_character_cut_by_the_sample_is_still_text():
    assert looks_like_text(("a" * 8191 + "é").encode())
    assert not looks_like_text(b"\xff\xfe\x00a")


def test_a_short_secret_key_is_refused_with_the_variable_named():
    with pytest.raises(InvalidInput, match="MLREG_SECRET_KEY: expected at least 16 characters"):
        ServerSettings(secret_key="short")
    assert ServerSettings.from_env({"MLREG_SECRET_KEY": "x" * 32}).secret_key == "x" * 32
    assert "x" * 32 not in repr(ServerSettings(secret_key="x" * 32))
