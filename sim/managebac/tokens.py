"""API tokens: which are known, which are enabled, and what each may do.

A token comes as the `auth-token` header, an OAuth2 bearer or the `auth_token` query
parameter (the spec's three security schemes). An unknown or disabled token is a 401
("missing, invalid, or has been disabled" in the spec); a known token without the right for
an endpoint is a 403 on that endpoint only.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.types import Scope

from sim.managebac.rights import ALL_RIGHTS

NO_TOKEN = "<none>"
"""Stats label of requests that carried no token."""
UNKNOWN_TOKEN = "<unknown>"
"""Stats label of requests whose token is not one the simulator knows."""


@dataclass
class TokenState:
    """One token's switch and rights; the control API changes them at run time."""

    enabled: bool
    rights: frozenset[str]

    def as_dict(self) -> dict[str, object]:
        """Return the JSON shape of `GET /_sim/tokens`."""
        return {"enabled": self.enabled, "rights": sorted(self.rights)}


@dataclass(frozen=True)
class Presented:
    """Who a request says it is: the known token it carried, or a stats label for none."""

    token: str | None
    label: str


class TokenRegistry:
    """The tokens one simulator accepts."""

    def __init__(self, main_token: str, tokens: Mapping[str, frozenset[str]]) -> None:
        self._configured = {main_token: ALL_RIGHTS, **tokens}
        self._tokens: dict[str, TokenState] = {}
        self.reset()

    def reset(self) -> None:
        """Return to the configured tokens, all enabled."""
        self._tokens = {t: TokenState(True, frozenset(r)) for t, r in self._configured.items()}

    def get(self, token: str) -> TokenState | None:
        """Return a token's state, None when unknown."""
        return self._tokens.get(token)

    def put(self, token: str, enabled: bool | None, rights: frozenset[str] | None) -> TokenState:
        """Change a token (or add one: enabled, every right); None leaves a field as it is."""
        state = self._tokens.setdefault(token, TokenState(True, ALL_RIGHTS))
        if enabled is not None:
            state.enabled = enabled
        if rights is not None:
            state.rights = rights
        return state

    def as_dict(self) -> dict[str, dict[str, object]]:
        """Return every token with its state."""
        return {token: state.as_dict() for token, state in sorted(self._tokens.items())}

    def identify(self, scope: Scope) -> Presented:
        """Return the first known token the request carries, compared in constant time."""
        candidates = _candidates(scope)
        for candidate in candidates:
            for token in self._tokens:
                if hmac.compare_digest(candidate.encode(), token.encode()):
                    return Presented(token, token)
        return Presented(None, UNKNOWN_TOKEN if candidates else NO_TOKEN)


def _candidates(scope: Scope) -> list[str]:
    """Return the non-empty credentials of a request: header, bearer, then query."""
    headers = Headers(scope=scope)
    candidates = [headers.get("auth-token", "")]
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        candidates.append(credentials.strip())
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    candidates.extend(query.get("auth_token", []))
    return [candidate for candidate in candidates if candidate]
