"""What a web front end may hand out: a guard in front of its file route, and paths fit to show.

Gradio serves any file under its temp folder and under the allowed folders through ``/file=``; an app
that keeps index files, other people's uploads or stray files there would expose them. ``FileGuard`` is a
plain ASGI middleware that answers 403 to a file request unless a predicate allows that path, so the
app decides exactly what is served. It needs no web framework beyond the ASGI interface.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable
from urllib.parse import unquote

log = logging.getLogger("motive_studio")

FILE_ROUTES = ("/file=", "/file/")


def requested_file(url_path: str) -> str | None:
    """The file a request path asks for (``…/file=PATH`` or ``…/file/PATH``), or None for other routes."""
    for marker in FILE_ROUTES:
        at = url_path.find(marker)
        if at >= 0:
            return unquote(url_path[at + len(marker):])
    return None


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both resolved, so ``..`` cannot climb out)."""
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except (ValueError, OSError):
        return False


class FileGuard:
    """ASGI middleware: a file request is passed on only when ``allowed(path)`` is true, else 403.

    A refusal is logged in one line (no traceback): the address asked for, not the file's contents.
    """

    def __init__(self, app, allowed: Callable[[Path], bool]):
        self.app, self.allowed = app, allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            target = requested_file(scope.get("path", ""))
            if target is not None and not target.startswith(("http://", "https://")) \
                    and not self.allowed(Path(target)):
                log.info("refused file request: %s", Path(target).name)
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
                await send({"type": "http.response.body", "body": b"This file is not served by this app.\n"})
                return
        await self.app(scope, receive, send)


def shown_path(path: str | Path, root: str | Path) -> str:
    """A path as it may appear in replies: relative to ``root`` when under it, else only its last part."""
    path = Path(path)
    if is_inside(path, Path(root)):
        return path.resolve().relative_to(Path(root).resolve()).as_posix() or "."
    return path.name
