"""The web dashboard (``procman dashboard``, or mounted in the app's own web server).

``procman.dashboard.wsgi_app(...)`` builds it for an app directory (see docs/dashboard.md); it
is ``procman.commands.dashboard.wsgi_app``, imported on first use so that importing this package
costs nothing. ``procman.dashboard.app`` is the Flask application itself, ``security`` its auth,
CSRF and headers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from procman.commands.dashboard import wsgi_app

__all__ = ["wsgi_app"]


def __getattr__(name: str) -> Any:
    if name != "wsgi_app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from procman.commands.dashboard import wsgi_app

    return wsgi_app
