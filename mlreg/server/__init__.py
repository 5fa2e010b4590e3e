"""mlreg.server: the registry and tracking server a team shares (``mlreg server``).

Not to be confused with ``mlreg.serving``, which scores one model. This package serves the
registry and tracking services over HTTP (``/api/v1``); clients reach it with
``MLREG_TRACKING_URI=http://host:5000`` through the REST stores.
"""
