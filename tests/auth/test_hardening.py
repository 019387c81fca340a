"""Operator sign-in hardening: password rules, lockout with backoff, TOTP second factor, ending sessions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from patron.api.app import create_app
from patron.auth.models import Operator
from patron.auth.schemas import OperatorCreate
from patron.auth.service import LOCK_AFTER, create_operator
from patron.db.base import utcnow
from patron.runtime import Runtime
from patron.settings import PLACEHOLDER_MASTER_KEY, Settings
from tests.api.conftest import assert_problem, new_client
from tests.conftest import PG_URL, _reset_postgres

PASSWORD = "hardening-test-pass-1"


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Runtime]:
    """A store whose admins must enrol a second factor (the production default)."""
    settings = Settings(
        home=tmp_path / "home",
        env="development",
        master_key=PLACEHOLDER_MASTER_KEY,
        database_url=PG_URL,
        require_admin_mfa=True,
    )
    rt = Runtime(settings)
    rt.settings.home.mkdir(parents=True)
    rt.store.migrate()
    if PG_URL:
        _reset_postgres(rt)
    yield rt
    rt.close()


@pytest.fixture
def app(secured: Runtime) -> FastAPI:
    return create_app(secured)


def _operator(rt: Runtime, name: str, role: str = "analyst") -> int:
    return create_operator(rt.store, OperatorCreate(username=name, password=PASSWORD, role=role)).id


def _login(client: TestClient, name: str, password: str = PASSWORD, otp: str | None = None) -> object:
    payload = {"username": name, "password": password} | ({"otp": otp} if otp else {})
    return client.post("/api/v1/auth/login", json=payload)


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short-1", "at least 10 characters"),
        ("password1234", "commonly breached"),
        ("P@ssw0rd123!", "too easy to guess"),
        ("iloveyou2020", "too easy to guess"),
        ("keeper-keeper-keeper", "too easy to guess"),
    ],
)
def test_weak_and_breached_passwords_are_refused_naming_the_field(
    app: FastAPI, secured: Runtime, password: str, why: str
) -> None:
    _operator(secured, "root", "admin")
    with new_client(app) as client:
        assert _login(client, "root").status_code == 200  # type: ignore[attr-defined]
        secret = client.post("/api/v1/auth/mfa/setup").json()["secret"]
        assert client.post("/api/v1/auth/mfa/confirm", json={"code": pyotp.TOTP(secret).now()}).status_code == 200
        operator = {"username": "keeper", "password": password, "role": "analyst"}
        response = client.post("/api/v1/operators", json=operator)
    body = assert_problem(response, 422)
    assert [e["loc"] for e in body["errors"]] == [["body", "password"]]
    assert why in body["errors"][0]["msg"]


def test_five_failures_lock_the_account_with_doubling_backoff(app: FastAPI, secured: Runtime) -> None:
    _operator(secured, "alice")
    with new_client(app) as client:
        for _ in range(LOCK_AFTER - 1):
            assert_problem(_login(client, "alice", "wrong-password"), 401)  # type: ignore[arg-type]
        assert_problem(_login(client, "alice", "wrong-password"), 401)  # type: ignore[arg-type]  # the fifth locks
        locked = _login(client, "alice")  # even the right password is refused while locked
        body = assert_problem(locked, 429)  # type: ignore[arg-type]
        assert 1 <= int(locked.headers["Retry-After"]) <= 30  # type: ignore[attr-defined]
        assert "try again" in body["detail"]
        with secured.store.session() as sess:  # the lock runs out
            sess.execute(update(Operator).values(locked_until=utcnow() - timedelta(seconds=1)))
        before = utcnow().replace(tzinfo=None)
        assert_problem(_login(client, "alice", "wrong-password"), 401)  # type: ignore[arg-type]  # sixth: 60 s
        after = utcnow().replace(tzinfo=None)
        with secured.store.session() as sess:
            op = sess.scalar(select(Operator).where(Operator.username == "alice"))
            assert op is not None and op.failed_logins == LOCK_AFTER + 1 and op.locked_until is not None
            # 60 s from the moment the sixth failure was handled
            until = op.locked_until.replace(tzinfo=None)
            assert before + timedelta(seconds=60) <= until <= after + timedelta(seconds=60)
            op.locked_until = utcnow() - timedelta(seconds=1)
        assert _login(client, "alice").status_code == 200  # type: ignore[attr-defined]
    with secured.store.session() as sess:
        op = sess.scalar(select(Operator).where(Operator.username == "alice"))
        assert op is not None and op.failed_logins == 0 and op.locked_until is None


def test_totp_enrolment_and_sign_in_with_a_code_used_once(app: FastAPI, secured: Runtime) -> None:
    _operator(secured, "bob")
    with new_client(app) as client:
        assert _login(client, "bob").status_code == 200  # type: ignore[attr-defined]
        setup = client.post("/api/v1/auth/mfa/setup")
        assert setup.status_code == 200, setup.text
        secret = setup.json()["secret"]
        assert setup.json()["otpauth_uri"].startswith("otpauth://totp/Patron:bob?secret=")
        wrong = client.post("/api/v1/auth/mfa/confirm", json={"code": "000000"})
        assert_problem(wrong, 422)
        code = pyotp.TOTP(secret).now()
        assert client.post("/api/v1/auth/mfa/confirm", json={"code": code}).status_code == 200
        assert_problem(client.post("/api/v1/auth/mfa/setup"), 409)  # a hijacked session cannot replace it
    with secured.store.session() as sess:
        stored = sess.scalar(select(Operator.mfa_secret).where(Operator.username == "bob"))
    assert stored is not None and secret.encode() not in stored  # sealed, never in clear
    with new_client(app) as client:
        missing = _login(client, "bob")
        assert_problem(missing, 401)  # type: ignore[arg-type]
        assert missing.headers["X-Patron-MFA"] == "required"  # type: ignore[attr-defined]
        assert_problem(_login(client, "bob", otp="123456" if code != "123456" else "654321"), 401)  # type: ignore[arg-type]
        with secured.store.session() as sess:  # the confirmation used this step; move to a fresh one
            sess.execute(update(Operator).values(mfa_last_step=None))
        fresh = pyotp.TOTP(secret).now()
        assert _login(client, "bob", otp=fresh).status_code == 200  # type: ignore[attr-defined]
    with new_client(app) as client:
        assert_problem(_login(client, "bob", otp=fresh), 401)  # type: ignore[arg-type]  # the same code again


def test_an_admin_must_enrol_before_doing_anything(app: FastAPI, secured: Runtime) -> None:
    _operator(secured, "carol", "admin")
    with new_client(app) as client:
        signed = _login(client, "carol")
        assert signed.json()["mfa_enrolment_required"] is True  # type: ignore[attr-defined]
        denied = assert_problem(client.get("/api/v1/operators"), 403)
        assert "second factor" in denied["detail"]
        secret = client.post("/api/v1/auth/mfa/setup").json()["secret"]
        assert client.post("/api/v1/auth/mfa/confirm", json={"code": pyotp.TOTP(secret).now()}).status_code == 200
        assert client.get("/api/v1/operators").status_code == 200
        assert client.get("/api/v1/auth/me").json()["mfa_enrolment_required"] is False


def test_signing_out_everywhere_ends_every_session(app: FastAPI, secured: Runtime) -> None:
    _operator(secured, "dave")
    with new_client(app) as first, new_client(app) as second:
        assert _login(first, "dave").status_code == 200  # type: ignore[attr-defined]
        assert _login(second, "dave").status_code == 200  # type: ignore[attr-defined]
        ended = first.post("/api/v1/auth/sessions/revoke-all")
        assert ended.json() == {"sessions_ended": 2}
        assert_problem(second.get("/api/v1/auth/me"), 401)
        assert_problem(first.get("/api/v1/auth/me"), 401)
