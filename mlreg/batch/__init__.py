"""Batch scoring: files of any size through a model (``mlreg predict``), and Spark UDFs.

Importing this package imports pyarrow; ``mlreg.pyfunc`` and the CLI import it only when a
batch is actually scored.
"""

from mlreg.batch.progress import Summary
from mlreg.batch.scorer import DEFAULT_BATCH_SIZE, PredictOptions, predict_file

__all__ = ["DEFAULT_BATCH_SIZE", "PredictOptions", "Summary", "predict_file"]
