"""mlreg.serving: the scoring server (Flask app factory, payload codecs, gunicorn runner)."""

from mlreg.serving.app import create_app
from mlreg.serving.settings import ServingSettings

__all__ = ["ServingSettings", "create_app"]
