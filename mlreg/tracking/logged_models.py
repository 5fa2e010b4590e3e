"""The rules of logged models (MLflow 3): models logged on their own, with their own files,
params, tags and the metrics logged against them (a part of the tracking service)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from mlreg.errors import InvalidInput, ModelNotFound
from mlreg.store.pages import Page, check_paging
from mlreg.store.validation import (
    validate_key,
    validate_params,
    validate_tags,
    validate_text_name,
)
from mlreg.tracking.entities import Experiment, Lifecycle, LoggedModel, LoggedModelStatus
from mlreg.tracking.search import Filter, OrderBy, parse_logged_model_filter
from mlreg.tracking.store import TrackingStore

MAX_LOGGED_MODEL_NAME = 500


def now_ms() -> int:
    return int(time.time() * 1000)


class LoggedModelRules:
    """The logged-model calls of :class:`~mlreg.tracking.service.TrackingService`."""

    store: TrackingStore
    #: Where logged models keep their files.
    logged_model_root: str

    def default_experiment_id(self) -> str: ...  # provided by TrackingService

    def active_experiment(self, experiment_id: str) -> Experiment: ...  # TrackingService

    def create_logged_model(
        self,
        experiment_id: str | None = None,
        name: str | None = None,
        *,
        source_run_id: str | None = None,
        model_type: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> LoggedModel:
        """A new PENDING logged model (MLflow 3): its files go under its own location."""
        experiment_id = experiment_id or self.default_experiment_id()
        self.active_experiment(experiment_id)
        name = name or "model"
        validate_text_name("logged model", name, MAX_LOGGED_MODEL_NAME)
        if model_type is not None:
            check_lengths("logged model", {"model_type": (model_type, 500)})
        if source_run_id:
            self.store.get_run(source_run_id)
        return self.store.create_logged_model(
            experiment_id,
            name,
            self.logged_model_root,
            now_ms(),
            source_run_id=source_run_id or None,
            model_type=model_type or None,
            params=validate_params(params),
            tags=validate_tags(tags),
        )

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        """One logged model; a deleted one is not found unless ``allow_deleted``."""
        model = self.store.get_logged_model(model_id)
        if model.lifecycle_stage is not Lifecycle.ACTIVE and not allow_deleted:
            raise deleted_model(model_id)
        return model

    def finalize_logged_model(self, model_id: str, status: LoggedModelStatus | str) -> LoggedModel:
        """Record that a logged model's files are complete (READY) or failed (FAILED)."""
        parsed = logged_model_status(status)
        self.get_logged_model(model_id)
        return self.store.update_logged_model(model_id, now_ms(), status=parsed)

    def delete_logged_model(self, model_id: str) -> None:
        self.get_logged_model(model_id)
        self.store.update_logged_model(model_id, now_ms(), lifecycle=Lifecycle.DELETED)

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, Any]) -> LoggedModel:
        clean = validate_tags(tags)
        self.get_logged_model(model_id)
        self.store.set_logged_model_tags(model_id, clean)
        return self.store.get_logged_model(model_id)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self.get_logged_model(model_id)
        self.store.set_logged_model_tags(model_id, {validate_key("tag", key): None})

    def log_logged_model_params(self, model_id: str, params: Mapping[str, Any]) -> None:
        clean = validate_params(params)
        self.get_logged_model(model_id)
        self.store.log_logged_model_params(model_id, clean)

    def search_logged_models(
        self,
        experiment_ids: list[str] | None = None,
        filter_string: str | None = None,
        order_by: list[OrderBy] | None = None,
        max_results: int = 100,
        offset: int = 0,
    ) -> Page:
        """Active logged models of the experiments (newest first unless ordered): MLflow's
        filter syntax on name, status, source_run_id ..., ``params.``, ``tags.``,
        ``metrics.``; ``order_by`` from :func:`~mlreg.tracking.search.logged_model_order`."""
        check_paging(max_results, offset)
        return self.store.search_logged_models(
            experiment_ids=experiment_ids or [self.default_experiment_id()],
            filters=parse_logged_model_filter(filter_string),
            order_by=order_by or [],
            max_results=max_results,
            offset=offset,
        )

    def logged_model_for_run(self, run_id: str, name: str) -> LoggedModel | None:
        """The newest logged model named ``name`` that the run logged, if any."""
        run = self.store.get_run(run_id)
        page = self.store.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filters=[
                Filter("attributes", "source_run_id", "=", run_id),
                Filter("attributes", "name", "=", name),
            ],
            max_results=1,
        )
        return page.items[0] if page.items else None


def logged_model_status(value: LoggedModelStatus | str) -> LoggedModelStatus:
    try:
        parsed = LoggedModelStatus(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed is LoggedModelStatus.PENDING:
        raise InvalidInput(f"invalid logged model status {value!r}; expected READY or FAILED")
    return parsed


def deleted_model(model_id: str) -> ModelNotFound:
    return ModelNotFound(f"logged model {model_id!r} was deleted")


def check_lengths(what: str, values: Mapping[str, tuple[str | None, int]]) -> None:
    for name, (value, limit) in values.items():
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            raise InvalidInput(f"{what}: {name} must be text of at most {limit} characters")
