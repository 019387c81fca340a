"""Idempotency keys: a retry replays the first result; a different request under the key is a conflict."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.db.engine import OperationalStore
from patron.db.idempotency import IdempotencyRecord, request_hash, run_idempotent
from patron.errors import ConflictError, ValidationError
from patron.loyalty.ledger_models import LedgerTransaction
from patron.loyalty.ledger_schemas import EarnRequest, RedeemRequest
from patron.loyalty.ledger_service import earn_points, get_balance, redeem_points
from patron.runtime import Runtime


def _count(store: OperationalStore) -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(LedgerTransaction)) or 0)


def test_the_same_key_and_request_replays_the_first_result(runtime: Runtime) -> None:
    body = EarnRequest(points=10, reference="order-1")
    first, replayed_first = earn_points(runtime.store, "key-1", "m-1", body, "test")
    again, replayed_again = earn_points(runtime.store, "key-1", "m-1", body, "someone else")

    assert (replayed_first, replayed_again) == (False, True)
    assert again == first
    assert get_balance(runtime.store, "m-1").available == 10
    assert _count(runtime.store) == 1


def test_the_same_key_with_another_request_is_a_conflict(runtime: Runtime) -> None:
    earn_points(runtime.store, "key-1", "m-1", EarnRequest(points=10, reference="order-1"), "test")

    with pytest.raises(ConflictError, match="different request"):
        earn_points(runtime.store, "key-1", "m-1", EarnRequest(points=11, reference="order-1"), "test")
    with pytest.raises(ConflictError, match="different request"):
        earn_points(runtime.store, "key-1", "m-2", EarnRequest(points=10, reference="order-1"), "test")
    assert _count(runtime.store) == 1


def test_keys_are_scoped_per_operation(runtime: Runtime) -> None:
    earn_points(runtime.store, "key-1", "m-1", EarnRequest(points=10, reference="order-1"), "test")
    _, replayed = redeem_points(runtime.store, "key-1", "m-1", RedeemRequest(points=4, reference="basket"), "test")

    assert not replayed
    assert get_balance(runtime.store, "m-1").available == 6


def test_a_failed_request_does_not_keep_its_key(runtime: Runtime) -> None:
    body = RedeemRequest(points=5, reference="basket-1")
    with pytest.raises(ConflictError, match="available points"):
        redeem_points(runtime.store, "key-1", "m-1", body, "test")
    earn_points(runtime.store, "key-2", "m-1", EarnRequest(points=10, reference="order-1"), "test")

    result, replayed = redeem_points(runtime.store, "key-1", "m-1", body, "test")

    assert not replayed and result.points == 5
    with runtime.store.session() as s:
        assert s.scalar(select(func.count()).select_from(IdempotencyRecord)) == 2


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "naïve"])
def test_malformed_keys_are_refused(runtime: Runtime, key: str) -> None:
    with pytest.raises(ValidationError) as error:
        earn_points(runtime.store, key, "m-1", EarnRequest(points=10, reference="order-1"), "test")
    assert error.value.field == "idempotency_key"


def test_the_request_hash_is_canonical() -> None:
    assert request_hash({"a": 1, "b": [1, 2]}) == request_hash({"b": [1, 2], "a": 1})
    assert request_hash({"a": 1}) != request_hash({"a": 2})


def test_racing_requests_with_one_key_run_the_action_once(runtime: Runtime) -> None:
    runs: list[int] = []
    results: list[tuple[dict[str, Any], bool]] = []
    errors: list[Exception] = []
    barrier = threading.Barrier(8)

    def action(_session: Session) -> dict[str, Any]:
        runs.append(1)
        return {"value": 42}

    def client() -> None:
        store = OperationalStore(runtime.store.url)
        try:
            barrier.wait()
            results.append(run_idempotent(store, "test.race", "same-key", {"n": 1}, action))
        except Exception as exc:
            errors.append(exc)
        finally:
            store.dispose()

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(runs) == 1
    assert sorted(replayed for _, replayed in results) == [False] + [True] * 7
    assert all(response == {"value": 42} for response, _ in results)
