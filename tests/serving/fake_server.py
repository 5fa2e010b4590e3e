"""``mlreg serve``'s server with a numpy stand-in for the model: the real gunicorn master, HTTP
worker, settings and app, without TensorFlow (it starts in about a second).

    python -m tests.serving.fake_server MODEL DIR   # MODEL: cnn, columns, multi or sleepy
    python -m tests.serving.fake_server uri -       # MLREG_MODEL_URI: fakes.shifted versions

Settings come from ``MLREG_*`` variables, as for ``mlreg serve`` (the registry's too).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mlreg.serving.gunicorn_app import run
from mlreg.serving.settings import ServingSettings
from mlreg.uris import resolve_model_uri
from tests.serving import fakes

MODELS = {"cnn": fakes.cnn, "columns": fakes.columns, "multi": fakes.multi, "sleepy": fakes.sleepy}


def main(kind: str, root: str) -> None:
    settings = ServingSettings.from_env(os.environ)
    if kind == "uri":  # a registry URI, followed or not: every version opens from its files
        source = resolve_model_uri(str(settings.model_uri))
        run(settings, source, loader=lambda settings, source, metrics: fakes.open_model(source))
        return
    model = MODELS[kind](Path(root))
    run(settings, model.source, loader=lambda settings, source, metrics: model)


if __name__ == "__main__":
    main(*sys.argv[1:3])
