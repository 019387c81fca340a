"""`patron promotions expire-coupons` through Typer's CliRunner against the test's store (SQLite or PostgreSQL)."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select
from typer.testing import CliRunner

from patron.audit.models import AuditEntry
from patron.cli import promotions as promotions_cli
from patron.cli.common import close_runtimes
from patron.db.base import utcnow
from patron.promotions.models import Coupon
from patron.runtime import Runtime
from patron.settings import PLACEHOLDER_MASTER_KEY
from tests.promotions.test_coupons import issue, make_template, member


def test_expire_coupons_marks_the_unused_coupons_of_ended_promotions_and_is_audited(runtime: Runtime) -> None:
    ends = utcnow() + timedelta(days=1)
    make_template(runtime, "ENDING", ends_at=ends)
    codes = [issue(runtime, "ENDING", member()) for _ in range(3)]
    env = {
        "PATRON_HOME": str(runtime.settings.home),
        "PATRON_ENV": "development",
        "PATRON_DATABASE_URL": runtime.settings.database_url,
        "PATRON_WAREHOUSE_URL": None,
        "PATRON_MASTER_KEY": PLACEHOLDER_MASTER_KEY,
    }

    def run(*args: str) -> dict[str, object]:
        try:
            result = CliRunner().invoke(promotions_cli.app, list(args), env=env, catch_exceptions=False)
        finally:
            close_runtimes()
        assert result.exit_code == 0, result.output
        found: dict[str, object] = json.loads(result.stdout)
        return found

    early = run("expire-coupons", "--as-of", (ends - timedelta(hours=1)).isoformat(), "--json")
    done = run("expire-coupons", "--as-of", ends.isoformat(), "--json")

    assert (early["job"], early["coupons"], done["coupons"]) == ("coupon-expiry", 0, 3)
    with runtime.store.session() as session:
        statuses = set(session.scalars(select(Coupon.status).where(Coupon.code.in_(codes))))
        audited = list(session.scalars(select(AuditEntry.action).where(AuditEntry.action == "coupon.expire")))
    assert statuses == {"expired"}
    assert audited == ["coupon.expire", "coupon.expire"]
