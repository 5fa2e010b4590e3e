"""What a file looks like on a page: text, JSON (indented), YAML, the MLmodel file, an image,
or nothing (binary) — read from the first bytes only, so a large file costs no more."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from mlreg.errors import MlregError
from mlreg.models.model import Model
from mlreg.store.files import Stream

#: Bytes of a file a preview reads.
PREVIEW_BYTES = 256 * 1024
#: Image types shown inline, by extension. Never SVG: it can carry script, so it is text here.
IMAGE_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
}
TEXT_EXTENSIONS = {
    "txt", "md", "csv", "tsv", "log", "py", "cfg", "ini", "toml", "sh", "xml", "html", "svg",
    "pbtxt", "yaml", "yml", "json", "jsonl", "ipynb",
}  # fmt: skip
MLMODEL = "MLmodel"

Opener = Callable[[int, int | None], Stream]


@dataclass
class Preview:
    """``kind``: image, json, yaml, mlmodel, text or binary."""

    path: str
    kind: str
    size: int
    text: str = ""
    truncated: bool = False
    #: The text as it is in the file (``text`` may be reformatted, e.g. indented JSON).
    raw: str = ""
    #: For the MLmodel file: flavors, signature and example, parsed.
    model: Model | None = None
    #: Why the file is not shown as what its name says (e.g. invalid JSON).
    note: str = ""
    facts: dict[str, Any] = field(default_factory=dict)


def extension(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def image_type(path: str) -> str | None:
    return IMAGE_TYPES.get(extension(path))


def read_head(open_range: Opener, limit: int = PREVIEW_BYTES) -> tuple[bytes, int]:
    """The first ``limit`` bytes of a file and its size."""
    stream = open_range(0, limit)
    return b"".join(stream.chunks), stream.size


def looks_like_text(data: bytes) -> bool:
    if b"\x00" in data[:8192]:
        return False
    try:
        data[:8192].decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= 8188  # a multi-byte character cut at the end of the sample
    return True


def preview(path: str, open_range: Opener) -> Preview:
    """Read the start of ``path`` and decide how to show it."""
    if image_type(path):
        stream = open_range(0, 0)
        return Preview(path, "image", stream.size)
    data, size = read_head(open_range)
    truncated = size > len(data)
    ext = extension(path)
    name = path.rsplit("/", 1)[-1]
    if ext not in TEXT_EXTENSIONS and name != MLMODEL and not looks_like_text(data):
        return Preview(path, "binary", size)
    text = data.decode("utf-8", errors="replace")
    if name == MLMODEL:
        return _mlmodel(path, text, size, truncated)
    if ext == "json" and not truncated:
        try:
            pretty = json.dumps(json.loads(text), indent=2)
            return Preview(path, "json", size, pretty, raw=text)
        except (ValueError, RecursionError):
            return Preview(path, "text", size, text, note="not valid JSON; shown as text")
    if ext in ("yaml", "yml"):
        return Preview(path, "yaml", size, text, truncated)
    return Preview(path, "text", size, text, truncated)


def _mlmodel(path: str, text: str, size: int, truncated: bool) -> Preview:
    found = Preview(path, "mlmodel", size, text, truncated)
    if truncated:
        found.note = "too large to be an MLmodel file; shown as text"
        return found
    try:
        doc = yaml.safe_load(text)
        if not isinstance(doc, dict):
            raise ValueError("not a mapping")
        found.model = Model.from_dict(doc, source=path)
    except (yaml.YAMLError, ValueError, RecursionError) as e:
        found.note = f"cannot be read as an MLmodel file ({type(e).__name__}); shown as text"
    except MlregError as e:
        found.note = f"not a valid MLmodel file: {e.message}"
    return found
