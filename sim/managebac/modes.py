"""Odd answers: an HTML maintenance page, or a redirect to a login page, instead of the API.

The notes warn these can come with a 2xx or 3xx; a client must treat a non-JSON answer as a
transient failure. The simulator only produces them (`PUT /_sim/mode`), in front of everything
else, as an edge proxy or a single-sign-on layer would. The page texts are made up.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Literal

from starlette.responses import HTMLResponse, Response

ModeName = Literal["normal", "maintenance", "redirect"]
LOGIN_PATH = "/login"

MAINTENANCE_PAGE = """<!DOCTYPE html>
<html><head><title>ManageBac is down for maintenance</title></head>
<body><h1>We'll be back soon</h1><p>ManageBac is undergoing scheduled maintenance.</p></body>
</html>
"""
LOGIN_PAGE = """<!DOCTYPE html>
<html><head><title>Sign in - ManageBac</title></head>
<body><form method="post" action="/login"><input name="login"><input name="password"
type="password"><button>Sign in</button></form></body></html>
"""


def _redirect_page(location: str) -> str:
    href = html.escape(location)
    return f'<html><body>You are being <a href="{href}">redirected</a>.</body></html>'


@dataclass
class ServingMode:
    """How API routes answer now; `requests` set = that many odd answers, then normal again."""

    mode: ModeName = "normal"
    status: int = 200
    """Status of the maintenance page (200 or 503 in practice)."""
    location: str = LOGIN_PATH
    """Where the redirect points; the simulator serves a login page at `/login`."""
    requests: int | None = None

    def as_dict(self) -> dict[str, object]:
        """Return the JSON shape of `GET`/`PUT /_sim/mode`."""
        return {
            "mode": self.mode,
            "status": self.status,
            "location": self.location,
            "requests": self.requests,
        }

    def take(self) -> Response | None:
        """Return the odd answer for one API request, None in normal mode."""
        if self.mode == "normal":
            return None
        response: Response
        if self.mode == "maintenance":
            response = HTMLResponse(MAINTENANCE_PAGE, status_code=self.status)
        else:
            response = HTMLResponse(
                _redirect_page(self.location), status_code=302, headers={"Location": self.location}
            )
        if self.requests is not None:
            self.requests -= 1
            if self.requests <= 0:
                self.mode, self.requests = "normal", None
        return response
