"""The Backend protocol: what the server needs from a model, and who provides it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from mlreg.pyfunc import PyFuncModel
from mlreg.serving.backends import LOADERS, Backend
from tests.serving import fakes

MEMBERS = sorted(n for n in vars(Backend) if not n.startswith("_"))


def test_the_protocol_declares_what_the_server_calls() -> None:
    assert MEMBERS == [
        "enforce",
        "metadata",
        "predict_unchecked",
        "remote",
        "serving_input_example",
        "signature",
        "source",
        "unready_reason",
    ]
    for name in MEMBERS:
        assert (getattr(Backend, name).__doc__ or "").strip(), f"{name} says nothing"


def test_backends_implement_all_of_it(tmp_path: Path) -> None:
    fake = fakes.cnn(tmp_path / "cnn")
    pyfunc = PyFuncModel(fake, fake.metadata, fake.source)  # the fake predicts, too
    for backend in (pyfunc, fake):
        assert [n for n in MEMBERS if not hasattr(backend, n)] == []
    assert pyfunc.unready_reason() is None and pyfunc.remote is False


def test_every_loader_names_a_function_that_exists():
    # Read, not imported: the tfserving module would import TensorFlow's protos.
    for target in LOADERS.values():
        module, _, function = target.partition(":")
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin is not None, target
        assert f"\ndef {function}(" in Path(spec.origin).read_text(), target
