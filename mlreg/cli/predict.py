"""``mlreg predict``: score a file (or standard input) with a model, batch by batch.

This module imports only click: pyarrow, pandas and TensorFlow load when the command runs.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from mlreg.errors import InvalidInput, MissingDependency

FORMATS = ("csv", "json", "jsonl", "parquet")


def _names(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    if not names:
        raise InvalidInput("expected a comma-separated list of column names, got nothing")
    return names


@click.command("predict")
@click.option("-m", "--model-uri", required=True, help="Model: a path, runs:/, models:/ URI.")
@click.option("-i", "--input", "input_path", required=True, help="Input file, or - for stdin.")
@click.option("-o", "--output", "output_path", required=True, help="Output file, or - for stdout.")
@click.option(
    "--format",
    "input_format",
    type=click.Choice(FORMATS),
    default=None,
    help="Input format (default: from the extension); also the output's if it has none.",
)
@click.option("--output-format", type=click.Choice(FORMATS), default=None, help="Output format.")
@click.option("--batch-size", type=int, default=None, help="Rows per model call (4096).")
@click.option("--columns", default=None, help="Input columns to feed the model, in order: a,b.")
@click.option(
    "--keep-columns", default=None, help="Input columns copied to the output (a,b; * for all)."
)
@click.option(
    "--output-column", default="prediction", show_default=True, help="Name of the prediction."
)
@click.option("--params", default=None, help="Inference params as JSON: '{\"k\": 3}'.")
@click.option(
    "--on-error",
    type=click.Choice(["fail", "skip"]),
    default="fail",
    show_default=True,
    help="A row that does not fit the signature stops the run, or is skipped.",
)
@click.option("--errors-output", default=None, help="Write skipped rows and why (with skip).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
def predict(
    model_uri: str,
    input_path: str,
    output_path: str,
    batch_size: int | None,
    columns: str | None,
    keep_columns: str | None,
    params: str | None,
    quiet: bool,
    **flags: Any,
) -> None:
    """Score a CSV, JSON or Parquet file with a model.

    CSV, JSON, JSON Lines or Parquet, read and scored batch by batch in bounded memory, each
    batch checked against the model's signature.

    \b
    Examples:
      mlreg predict -m models:/mnist/Production -i images.parquet -o scores.parquet
      mlreg predict -m ./mnist-cnn -i rows.jsonl -o scores.csv --on-error skip
      cat rows.json | mlreg predict -m runs:/<run_id>/model -i - --format json -o -
    """
    try:
        batch = importlib.import_module("mlreg.batch")
    except ImportError as e:
        raise MissingDependency(
            f"mlreg predict needs {e.name}: pip install 'mlreg[batch]'"
        ) from None
    from mlreg.pyfunc import load_model
    from mlreg.serving.codecs import decode_json

    parsed = None
    if params is not None:
        parsed = decode_json(params.encode())
        if not isinstance(parsed, dict):
            raise InvalidInput("--params: expected a JSON object of param names and values")
    options = batch.PredictOptions(
        input=input_path,
        output=output_path,
        batch_size=batch.DEFAULT_BATCH_SIZE if batch_size is None else batch_size,
        columns=_names(columns),
        keep_columns=_names(keep_columns) or (),
        params=parsed,
        progress=not quiet,
        **flags,
    )
    options.check()
    summary = batch.predict_file(load_model(model_uri), options)
    if not quiet:
        click.echo(summary.line(), err=True)


COMMANDS = [predict]
