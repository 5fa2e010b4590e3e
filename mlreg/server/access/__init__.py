"""Who may do what on the server: users, groups, API tokens, grants, and the check that runs
before every route (``guard``)."""

from mlreg.server.access.entities import Caller, Grant, Group, Token, User
from mlreg.server.access.service import AccessService, LoginPolicy

__all__ = ["AccessService", "Caller", "Grant", "Group", "LoginPolicy", "Token", "User"]
