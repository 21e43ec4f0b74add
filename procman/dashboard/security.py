"""What keeps the dashboard safe: credentials and HTTP basic auth (compared in constant time),
the CSRF token every action carries, and the headers every response carries.

- Credentials come from ``PROCMAN_DASHBOARD_USER`` and ``PROCMAN_DASHBOARD_PASSWORD`` (or
  ``PROCMAN_DASHBOARD_PASSWORD_HASH``, a Werkzeug password hash such as
  ``scrypt:32768:8:1$salt$hash``, so the password itself need not sit in the environment).
- CSRF: a random token in a ``SameSite=Strict``, ``HttpOnly`` cookie that every form repeats in
  a hidden field (the double-submit pattern: nothing to store on the server, so it works the
  same across the processes of an app server); a POST whose field does not match the cookie, or
  whose ``Origin`` is another site, is refused with 403.
- Every response: a Content-Security-Policy allowing scripts, styles and requests from the
  dashboard itself only (no inline script or style), no framing, no sniffing, no caching.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from procman.errors import ProcmanError

USER_VARIABLE = "PROCMAN_DASHBOARD_USER"
PASSWORD_VARIABLE = "PROCMAN_DASHBOARD_PASSWORD"
HASH_VARIABLE = "PROCMAN_DASHBOARD_PASSWORD_HASH"
CSRF_COOKIE = "procman_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LOOPBACK = ("127.0.0.1", "::1", "localhost")

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class NoCredentials(ProcmanError):
    pass


@dataclass(frozen=True, slots=True)
class Credentials:
    user: str
    password: str | None = None
    password_hash: str | None = None
    """A Werkzeug hash (``werkzeug.security.generate_password_hash``); used when given."""

    def __repr__(self) -> str:  # never a password in a log or a traceback
        return f"Credentials(user={self.user!r}, password=***)"

    def check(self, user: str, password: str) -> bool:
        """Whether ``user``/``password`` match, in constant time (both compared, always)."""
        user_ok = hmac.compare_digest(user.encode(), self.user.encode())
        if self.password_hash is not None:
            from werkzeug.security import check_password_hash

            password_ok = check_password_hash(self.password_hash, password)
        else:
            assert self.password is not None
            password_ok = hmac.compare_digest(password.encode(), self.password.encode())
        return user_ok and password_ok


def credentials_from(environ: Mapping[str, str]) -> Credentials | None:
    """The credentials in ``environ``; None when no user is set. A user without a password (or
    a password without a user) is an error."""
    user = environ.get(USER_VARIABLE) or None
    password = environ.get(PASSWORD_VARIABLE) or None
    password_hash = environ.get(HASH_VARIABLE) or None
    if user is None and password is None and password_hash is None:
        return None
    if user is None or (password is None and password_hash is None):
        missing = USER_VARIABLE if user is None else f"{PASSWORD_VARIABLE} or {HASH_VARIABLE}"
        raise NoCredentials(
            f"the dashboard's credentials are incomplete: {missing} is not set",
            f"set both {USER_VARIABLE} and {PASSWORD_VARIABLE} (or {HASH_VARIABLE})",
        )
    if password_hash is not None:
        _check_hash(password_hash)
    return Credentials(user=user, password=password, password_hash=password_hash)


def _check_hash(password_hash: str) -> None:
    method = password_hash.split("$", 1)[0].split(":", 1)[0]
    if "$" not in password_hash or method not in ("scrypt", "pbkdf2"):
        raise NoCredentials(
            f"{HASH_VARIABLE} is not a password hash procman can check",
            'make one with: python -c "from werkzeug.security import generate_password_hash; '
            "print(generate_password_hash(input('password: ')))\"",
        )


def require_credentials_off_loopback(bind: str, credentials: Credentials | None) -> None:
    """Serving on anything but the loopback address needs credentials."""
    if credentials is None and bind not in LOOPBACK:
        raise NoCredentials(
            f"refusing to serve the dashboard on {bind} without a password: anyone who can "
            "reach that address could retry and delete jobs",
            f"set {USER_VARIABLE} and {PASSWORD_VARIABLE} (or {HASH_VARIABLE}), or bind to "
            "127.0.0.1",
        )


def basic_auth(header: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from an ``Authorization: Basic ...`` header, None if absent/bad."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(cookie: str | None, submitted: str | None) -> bool:
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(cookie.encode(), submitted.encode())


def same_origin(origin: str | None, host: str | None) -> bool:
    """A POST's ``Origin`` (when the browser sends one) names this host."""
    if origin is None:
        return True
    if origin == "null" or host is None:
        return False
    return urlsplit(origin).netloc == host
