"""What the UI tests look at: an experiment with runs and metric histories, a model with
versions in stages, aliases and tags — and names, tags and descriptions that are HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlreg.registry import MlregClient
from mlreg.store.settings import StoreSettings
from mlreg.tracking.client import TrackingClient
from tests.conftest import make_model_dir

#: What an attacker would like a page to run; every page must show it as text.
SCRIPT = "<script>document.title='pwned'</script>"
IMG = '<img src=x onerror="document.title=1">'


@dataclass
class Seeded:
    experiment_id: str
    runs: list[str] = field(default_factory=list)
    model: str = "cnn"
    run_with_model: str = ""


def seed(settings: StoreSettings, scratch: Path, runs: int = 3, steps: int = 20) -> Seeded:
    """An experiment ``vision`` with ``runs`` runs (metrics loss/accuracy over ``steps`` steps,
    params that differ), a model directory logged in the first run, and a model ``cnn`` with
    three versions: v1 Archived, v2 Production, v3 None; alias @champion -> 2."""
    with TrackingClient(settings) as tracking, MlregClient(settings) as registry:
        exp = tracking.create_experiment("vision", tags={"team": SCRIPT})
        seeded = Seeded(exp)
        for i in range(runs):
            run = tracking.create_run(exp, f"run-{i}", tags={"note": IMG})
            metrics = []
            for step in range(steps):
                at = 1_700_000_000_000 + step * 1000
                metrics.append(("loss", 1.0 / (step + 1 + i), step, at))
                metrics.append(("accuracy", 0.5 + step * 0.02 - i * 0.01, step, at))
            params = {"lr": str(0.001 * (i + 1)), "optimizer": "adam", "layers": "3"}
            tracking.log_batch(run.info.run_id, metrics, params={**params, "html": SCRIPT})
            seeded.runs.append(run.info.run_id)
        first = seeded.runs[0]
        model_dir = make_model_dir(scratch / "model-src")
        tracking.log_artifacts(first, model_dir, "model")
        tracking.log_text(first, "hello <b>world</b>\n", "notes.txt")
        tracking.log_dict(first, {"a": 1, "b": [1, 2]}, "config.json")
        tracking.log_dict(first, {"a": 1}, "config.yaml")
        seeded.run_with_model = first
        for run_id in seeded.runs:
            tracking.set_terminated(run_id)
        for n in range(3):
            registry.register_model(str(model_dir), "cnn", run_id=seeded.runs[n % runs])
        registry.transition_model_version_stage("cnn", 1, "Production")
        registry.transition_model_version_stage("cnn", 2, "Production", True)
        registry.set_alias("cnn", "champion", 2)
        registry.set_registered_model_tag("cnn", "owner", SCRIPT)
        registry.update_registered_model("cnn", f"A small CNN. {SCRIPT}")
        registry.set_model_version_tag("cnn", 2, "data", IMG)
    return seeded
