"""mlreg.web: what mlreg's two HTTP servers share (the scoring server and the registry server).

Logging (text or JSON lines), request ids, access logs, JSON error responses for every error,
and gunicorn plumbing. Transport only: no rules of the registry, tracking or models here.
"""
