"""Consent per member and purpose: defaults, history, restriction, the cached check, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest
from sqlalchemy import delete, event, insert, text, update

from patron.consent import cache
from patron.consent.models import ConsentEvent, MemberConsent
from patron.consent.service import (
    allowed,
    allowed_members,
    consent_history,
    lift_restriction,
    member_consents,
    personalization_block,
    restrict,
    set_consent,
)
from patron.db.base import utcnow
from patron.errors import ConflictError, NotFoundError, ValidationError
from patron.members.identity import resolve_member_keys
from patron.runtime import Runtime


def _members(runtime: Runtime, *source_ids: str) -> list[str]:
    lookup = resolve_member_keys(runtime.store, "crm", pl.Series(list(source_ids)))
    keys = dict(lookup.select("member_source_id", "member_key").iter_rows())
    return [keys[s] for s in source_ids]


@pytest.fixture(autouse=True)
def _fresh_cache(runtime: Runtime) -> None:
    """PostgreSQL runs reuse one URL: no test sees the snapshot an earlier test left."""
    cache.invalidate(runtime.store)


@pytest.fixture
def member(runtime: Runtime) -> str:
    return _members(runtime, "c-1")[0]


def test_a_member_never_asked_gets_the_documented_defaults(runtime: Runtime, member: str) -> None:
    found = member_consents(runtime.store, member)

    states = {c.purpose: (c.state, c.asked, c.allowed) for c in found.consents}
    assert states == {
        "marketing_email": ("denied", False, False),
        "marketing_sms": ("denied", False, False),
        "marketing_push": ("denied", False, False),
        "personalization": ("granted", False, True),
        "analytics": ("granted", False, True),
    }
    assert found.restriction is None and found.personalization_blocked is None
    assert allowed(runtime.store, member, "personalization") and allowed(runtime.store, member, "analytics")
    assert not allowed(runtime.store, member, "marketing_email")


def test_statements_build_a_history_and_the_newest_is_the_state(runtime: Runtime, member: str) -> None:
    set_consent(runtime.store, member, "marketing_email", "granted", source="checkout", actor="shop", evidence="co-77")
    set_consent(runtime.store, member, "marketing_email", "withdrawn", source="api", actor="app", evidence="unsub")
    set_consent(runtime.store, member, "personalization", "denied", source="console", actor="operator:ann")

    current = {c.purpose: c for c in member_consents(runtime.store, member).consents}
    history = consent_history(runtime.store, member)
    email_only = consent_history(runtime.store, member, "marketing_email")

    assert current["marketing_email"].state == "withdrawn" and current["marketing_email"].source == "api"
    assert current["marketing_email"].asked and not current["marketing_email"].allowed
    assert current["personalization"].state == "denied" and current["personalization"].actor == "operator:ann"
    assert [(e.purpose, e.state, e.source, e.evidence) for e in history.items] == [
        ("personalization", "denied", "console", ""),
        ("marketing_email", "withdrawn", "api", "unsub"),
        ("marketing_email", "granted", "checkout", "co-77"),
    ]
    assert history.total == 3 and email_only.total == 2
    assert all(e.recorded_at is not None and e.at <= utcnow() for e in history.items)


def test_repeating_the_current_statement_records_nothing(runtime: Runtime, member: str) -> None:
    for _ in range(3):
        set_consent(runtime.store, member, "marketing_sms", "granted", source="api", actor="app", evidence="v2")

    assert consent_history(runtime.store, member).total == 1


def test_an_older_statement_joins_the_history_without_changing_the_state(runtime: Runtime, member: str) -> None:
    set_consent(runtime.store, member, "marketing_push", "granted", source="api", actor="app")
    set_consent(
        runtime.store,
        member,
        "marketing_push",
        "denied",
        source="import",
        actor="crm",
        at=utcnow() - timedelta(days=90),
    )

    state = {c.purpose: c.state for c in member_consents(runtime.store, member).consents}
    assert state["marketing_push"] == "granted"
    assert consent_history(runtime.store, member, "marketing_push").total == 2


def test_withdrawing_needs_a_granted_purpose(runtime: Runtime, member: str) -> None:
    with pytest.raises(ConflictError, match="marketing_email is denied"):
        set_consent(runtime.store, member, "marketing_email", "withdrawn", source="api", actor="app")
    withdrawn = set_consent(runtime.store, member, "personalization", "withdrawn", source="api", actor="app")

    assert withdrawn.state == "withdrawn" and not withdrawn.allowed
    assert consent_history(runtime.store, member).total == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"purpose": "telepathy"}, "purpose"),
        ({"state": "maybe"}, "state"),
        ({"member_key": "M0"}, "member_key"),
        ({"evidence": "said yes at jo.doe@example.com"}, "evidence"),
        ({"evidence": "called +44 20 7946 0018"}, "evidence"),
        ({"evidence": "x" * 513}, "evidence"),
        ({"at": utcnow() + timedelta(days=1)}, "at"),
    ],
)
def test_bad_statements_name_the_field_and_write_nothing(
    runtime: Runtime, member: str, fields: dict[str, Any], field: str
) -> None:
    args: dict[str, Any] = {"member_key": member, "purpose": "marketing_email", "state": "granted", **fields}
    rest = {k: v for k, v in args.items() if k in ("evidence", "at")}

    with pytest.raises(ValidationError) as caught:
        set_consent(
            runtime.store, args["member_key"], args["purpose"], args["state"], source="api", actor="app", **rest
        )

    assert caught.value.field == field
    assert consent_history(runtime.store, member).total == 0


def test_an_unknown_member_is_not_found(runtime: Runtime) -> None:
    with pytest.raises(NotFoundError):
        set_consent(runtime.store, "m0000000000000000", "analytics", "denied", source="api", actor="app")
    with pytest.raises(NotFoundError):
        member_consents(runtime.store, "m0000000000000000")


def test_the_history_is_append_only(runtime: Runtime, member: str) -> None:
    set_consent(runtime.store, member, "analytics", "denied", source="api", actor="app")

    for statement in (update(ConsentEvent).values(state="granted"), delete(ConsentEvent)):
        with pytest.raises(Exception, match="append-only"), runtime.store.engine.begin() as conn:
            conn.execute(statement)
    assert consent_history(runtime.store, member).items[0].state == "denied"


def test_a_restriction_stops_every_purpose_until_lifted(runtime: Runtime, member: str) -> None:
    set_consent(runtime.store, member, "marketing_email", "granted", source="checkout", actor="shop")
    with runtime.store.session() as session:
        assert restrict(session, member, reason="request", request_id=None, actor="operator:ann")
    cache.invalidate(runtime.store)

    restricted = member_consents(runtime.store, member)
    assert restricted.restriction is not None and restricted.restriction.reason == "request"
    assert restricted.personalization_blocked == "processing_restricted"
    assert not any(c.allowed for c in restricted.consents)
    assert not allowed(runtime.store, member, "marketing_email")
    assert personalization_block(runtime.store, member) == "processing_restricted"

    lift_restriction(runtime.store, member)

    assert allowed(runtime.store, member, "marketing_email") and personalization_block(runtime.store, member) is None
    with pytest.raises(NotFoundError):
        lift_restriction(runtime.store, member)


def test_an_erasure_restriction_cannot_be_lifted(runtime: Runtime, member: str) -> None:
    with runtime.store.session() as session:
        restrict(session, member, reason="erasure", request_id=None, actor="operator:ann")

    with pytest.raises(ConflictError, match="erased"):
        lift_restriction(runtime.store, member)


def test_allowed_members_answers_for_a_batch(runtime: Runtime) -> None:
    yes, withdrew, never, restricted = _members(runtime, "b-1", "b-2", "b-3", "b-4")
    for key in (yes, withdrew, restricted):
        set_consent(runtime.store, key, "marketing_sms", "granted", source="checkout", actor="shop")
    set_consent(runtime.store, withdrew, "marketing_sms", "withdrawn", source="api", actor="app")
    with runtime.store.session() as session:
        restrict(session, restricted, reason="request", request_id=None, actor="operator:ann")

    assert allowed_members(runtime.store, "marketing_sms", [yes, withdrew, never, restricted]) == {yes}
    assert allowed_members(runtime.store, "analytics", [yes, withdrew, never, restricted]) == {yes, withdrew, never}


def _statements(runtime: Runtime) -> list[str]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(runtime.store.engine, "before_cursor_execute", count)
    return seen


def test_the_personalization_check_costs_no_database_round_trip_when_fresh(runtime: Runtime, member: str) -> None:
    set_consent(runtime.store, member, "personalization", "withdrawn", source="api", actor="app")
    assert personalization_block(runtime.store, member) == "consent_withdrawn"  # loads the snapshot
    seen = _statements(runtime)

    answers = {personalization_block(runtime.store, member) for _ in range(1000)}

    assert answers == {"consent_withdrawn"}
    assert seen == []


def test_a_change_made_elsewhere_is_seen_within_the_ttl(
    runtime: Runtime, member: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process writes (here: the store, bypassing this process's cache); this one sees it after the TTL."""
    now = [1000.0]  # the cache's clock, moved by the test: no race with a slow machine
    monkeypatch.setattr(cache, "time", SimpleNamespace(monotonic=lambda: now[0]))
    cache.invalidate(runtime.store)
    assert personalization_block(runtime.store, member) is None
    with runtime.store.session() as session:
        session.execute(
            insert(MemberConsent).values(
                member_key=member,
                purpose="personalization",
                state="denied",
                source="api",
                actor="elsewhere",
                evidence="",
                at=utcnow(),
                event_id=0,
            )
        )
        cache.bump(session)

    now[0] += cache.CACHE_TTL - 0.01
    stale = personalization_block(runtime.store, member)
    now[0] += 0.02
    seen = _statements(runtime)
    fresh = personalization_block(runtime.store, member)
    again = personalization_block(runtime.store, member)

    assert stale is None
    assert fresh == again == "consent_denied"
    assert len(seen) == 4  # the counter, then the reload: counter, refusals, restrictions
    with runtime.store.engine.connect() as conn:
        assert conn.execute(text("SELECT revision FROM consent_revision")).scalar_one() == 1


def test_a_write_in_this_process_is_seen_at_once(runtime: Runtime, member: str) -> None:
    assert personalization_block(runtime.store, member) is None

    set_consent(runtime.store, member, "personalization", "denied", source="api", actor="app")
    denied = personalization_block(runtime.store, member)
    set_consent(runtime.store, member, "personalization", "granted", source="api", actor="app")

    assert denied == "consent_denied"
    assert personalization_block(runtime.store, member) is None
