"""Interactive API docs (Swagger UI) served from a pinned package, with no CDN.

Swagger UI's static files come from the ``flask-swagger-ui`` wheel, which
ships Swagger UI's release build under ``flask_swagger_ui/dist`` (its version
number is Swagger UI's).  Only the files are used: the package's Flask code is
never imported, and the directory is found without importing the package.

The page loads everything from ``assets_prefix`` on the gateway itself, so the
docs work on an air-gapped farm network.  It names the document and its assets
by URLs relative to its own path, so it also works unchanged when a reverse
proxy serves the gateway under a path prefix (``/opencue/docs``).  Swagger UI's
online validator badge is turned off, as it would call out to the internet.
The Authorize button takes the bearer token (the document declares the
``bearerAuth`` scheme) and "Try it out" sends it.
Nothing here imports Twisted: the gateway serves the three files of
:func:`read_assets` as fixed pages (or mounts :func:`assets_dir` with
``twisted.web.static.File``).
"""

from __future__ import annotations

import html
import importlib.util
import json
import posixpath
from pathlib import Path

ASSETS_PACKAGE = "flask_swagger_ui"
# The files the page loads; all of them are in the package's dist directory.
STYLESHEET = "swagger-ui.css"
SCRIPT = "swagger-ui-bundle.js"
FAVICON = "favicon-32x32.png"
PAGE_ASSETS = (STYLESHEET, SCRIPT, FAVICON)
CONTENT_TYPES = {
    STYLESHEET: "text/css; charset=utf-8",
    SCRIPT: "text/javascript; charset=utf-8",
    FAVICON: "image/png",
}


def assets_dir() -> Path:
    """The directory holding Swagger UI's static files.

    Raises:
        RuntimeError: the package is not installed or lacks a file the page needs.
    """
    spec = importlib.util.find_spec(ASSETS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"the API docs need the {ASSETS_PACKAGE.replace('_', '-')} package (Swagger UI's "
            "static files); install it or disable the docs"
        )
    directory = Path(next(iter(spec.submodule_search_locations))) / "dist"
    missing = [name for name in PAGE_ASSETS if not (directory / name).is_file()]
    if missing:
        raise RuntimeError(f"Swagger UI files missing from {directory}: {', '.join(missing)}")
    return directory


def read_assets() -> dict[str, tuple[str, bytes]]:
    """The files the page loads, read once: file name -> (content type, bytes).

    Serving exactly these (about 1.9 MB) at ``<assets_prefix>/<name>`` is all
    the page needs; no directory has to be mounted.
    """
    directory = assets_dir()
    return {name: (CONTENT_TYPES[name], (directory / name).read_bytes()) for name in PAGE_ASSETS}


def swagger_ui_version() -> str:
    """The packaged Swagger UI's version, e.g. ``v5.34.0`` (empty when not recorded)."""
    version_file = assets_dir() / "VERSION"
    return version_file.read_text("ascii").strip() if version_file.is_file() else ""


def _script_literal(value: object) -> str:
    """A JSON value safe inside an HTML ``<script>`` element."""
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def relative_url(target: str, page_path: str) -> str:
    """``target``, a path from the gateway's root, as a URL relative to the page at ``page_path``.

    A browser resolves it against the URL it loaded the page from, so behind a
    proxy that adds a prefix it lands under the same prefix, where an absolute
    path would escape it.  It always starts with ``./`` or ``../``, so a colon
    in it can never be read as a URL scheme.  Anything that is not a path from
    the root (a full URL) is returned as it is.
    """
    if not target.startswith("/") or target.startswith("//"):
        return target
    relative = posixpath.relpath(target, posixpath.dirname(page_path) or "/")
    if target.endswith("/"):
        relative += "/"
    return relative if relative.startswith(("./", "../")) else f"./{relative}"


def docs_page(
    openapi_url: str, assets_prefix: str, title: str = "opencue-gateway API",
    page_path: str = "/docs",
) -> bytes:
    """The HTML page of the interactive docs.

    Args:
        openapi_url: where the browser fetches the OpenAPI document, as a path from
            the gateway's root (``/openapi.json``) or a full URL.
        assets_prefix: the path under which :func:`assets_dir` is served,
            e.g. ``/docs/assets`` (a trailing slash is fine).
        title: the page title.
        page_path: the path the page itself is served at; the page refers to the
            other two relative to it.
    """
    prefix = assets_prefix.rstrip("/")
    config = {
        "url": relative_url(openapi_url, page_path),
        "dom_id": "#swagger-ui",
        # No request to validator.swagger.io: the docs must work offline.
        "validatorUrl": None,
        "deepLinking": True,
        # ~300 operations: start collapsed and offer the tag filter box.
        "docExpansion": "none",
        "filter": True,
        "defaultModelsExpandDepth": 0,
        "displayRequestDuration": True,
        "supportedSubmitMethods": ["post"],
        "tryItOutEnabled": False,
    }

    def asset(name: str) -> str:
        return html.escape(relative_url(f"{prefix}/{name}", page_path), quote=True)

    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="{asset(STYLESHEET)}">
<link rel="icon" type="image/png" href="{asset(FAVICON)}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{asset(SCRIPT)}" charset="utf-8"></script>
<script>
window.ui = SwaggerUIBundle(Object.assign({_script_literal(config)}, {{
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
}}));
</script>
</body>
</html>
"""
    return page.encode("utf-8")
