"""What the authorization walk is made of: the world, calls, bad inputs and routes.

Each domain keeps the matrix entries of its routes in a ``walk_<domain>.py``
module beside this one (a ``MATRIX`` dict); ``test_route_walk`` merges them.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from patron.alerts.schemas import AlertRuleCreate
from patron.alerts.service import create_rule
from patron.auth.schemas import ApiKeyCreate
from patron.auth.service import create_api_key
from patron.runtime import Runtime
from patron.tags.schemas import TagCreate
from patron.tags.service import create_tag

PUBLIC = "public"  # no credentials needed
SIGNED_IN = "signed-in"  # any operator or API key
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@dataclass
class World:
    """What sample requests refer to: real members, runs, operators and keys."""

    runtime: Runtime
    operators: dict[str, str]
    member_key: str
    run_id: int
    _serial: itertools.count[int] = field(default_factory=itertools.count)
    _tag: str = field(default_factory=lambda: secrets.token_hex(3))

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{self._tag}-{next(self._serial)}"

    def alert_rule(self) -> int:
        """A fresh alert rule, so that every change or deletion has one of its own."""
        data = AlertRuleCreate(name=self.unique("walk-rule"), metric="gmv", kind="threshold", op="<", value=1.0)
        return create_rule(self.runtime, data, "walk").id

    def tag(self) -> str:
        """A fresh rule tag, so that every change or deletion has one of its own."""
        return create_tag(
            self.runtime.store, TagCreate(name=self.unique("walk-tag"), rule="frequency > 1"), "walk"
        ).name

    def revocable_key(self) -> int:
        """A fresh API key, so that every revocation has one of its own."""
        data = ApiKeyCreate(name=self.unique("walk"), role="analyst", scopes=["members:read"])
        return create_api_key(self.runtime.store, data, None).id


@dataclass(frozen=True)
class Call:
    """One request: path values, query parameters, headers and (if ``has_body``) a JSON body."""

    path: dict[str, object] = field(default_factory=dict)
    params: dict[str, object] = field(default_factory=dict)
    body: Any = None
    has_body: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def body(value: Any) -> Call:
    return Call(body=value, has_body=True)


@dataclass(frozen=True)
class Bad:
    """An invalid request and the location its 422 must name."""

    label: str
    call: Callable[[World], Call]
    loc: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    permission: str  # a permission of patron.auth.rules, PUBLIC or SIGNED_IN
    sample: Callable[[World, str], Call] = lambda _w, _role: Call()  # a valid request by ``role``
    bad: tuple[Bad, ...] = ()
    ends_session: bool = False  # the call ends the caller's session: give it a session of its own
    expect: int | None = None  # the status a permitted caller gets for the sample, when it is not 2xx
    own_operator: bool = False  # the call ends every session of its operator: use an operator of its own
