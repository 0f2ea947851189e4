"""Local URLs only: where to send a user back to (never another site), and the page behind a form's address."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request
from starlette.routing import BaseRoute, Match, Mount

RELOGIN_NOTICE = "relogin"
"""``?notice=relogin``: the page after a login says the action that met an expired session was not carried out."""


def safe_local_path(target: str | None) -> str | None:
    r"""``target`` if it is a path on this site, else ``None``: redirects must never leave the site.

    A browser reads ``//host`` and ``/\host`` as another host, and control characters have no place in a URL.

    >>> safe_local_path("/m/alerts/1?lang=en"), safe_local_path("//evil.example"), safe_local_path("/\\evil")
    ('/m/alerts/1?lang=en', None, None)
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def local_referer(request: Request, url: str | None) -> str | None:
    """The path and query of ``url`` (a Referer or htmx's ``HX-Current-URL``) when it is this site's own page."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.netloc != request.url.netloc:
        return None
    return safe_local_path(parts.path + (f"?{parts.query}" if parts.query else ""))


def _opens(request: Request, path: str) -> bool:
    """Whether a GET of ``path`` reaches a page of the application."""
    scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
    routes = request.app.routes  # routes and included routers; static files are no page
    return any(
        isinstance(r, BaseRoute) and not isinstance(r, Mount) and r.matches(scope)[0] is Match.FULL for r in routes
    )


def page_path(request: Request) -> str:
    """A page the user can open for this request: its own path for a GET, else the nearest parent that opens.

    A form's address (``POST /m/alerts/1/act``) answers only its method: after a login the user must land on the
    page the form belongs to (``/m/alerts/1``), not on a "Method Not Allowed".
    """
    path = request.url.path
    if request.method in ("GET", "HEAD"):
        return path
    parts = path.rstrip("/").split("/")
    while len(parts) > 1:
        candidate = "/".join(parts)
        if _opens(request, candidate):
            return candidate
        parts.pop()
    return "/"


def with_param(target: str, key: str, value: str) -> str:
    """``target`` with the query parameter ``key`` set to ``value`` (every other parameter kept, in order).

    >>> with_param("/stats?month=2026-02&lang=zh", "lang", "en"), with_param("/m", "notice", "relogin")
    ('/stats?month=2026-02&lang=en', '/m?notice=relogin')
    """
    parts = urlsplit(target)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != key]
    # Replace in place when present, so switching back and forth does not reorder the URL.
    old = parse_qsl(parts.query, keep_blank_values=True)
    at = next((i for i, (k, _) in enumerate(old) if k == key), len(query))
    query.insert(min(at, len(query)), (key, value))
    return parts.path + "?" + urlencode(query)
