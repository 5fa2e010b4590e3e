"""A pytest plugin that makes TensorFlow unimportable (``pytest -p tests.without_tensorflow``).

``.ci/check`` runs the fast selection (``-m "not slow"``) with it, which proves that selection
needs no TensorFlow: any test or module that imports it fails with ImportError.
"""

from __future__ import annotations

import sys

BLOCKED = ("tensorflow", "keras", "tf_keras", "tensorboard", "tensorflow_serving")

for _name in BLOCKED:
    sys.modules[_name] = None  # type: ignore[assignment]  # `import x` now raises ImportError
