"""The console catalogs: same keys in every language, every used key present."""

from __future__ import annotations

import re
from pathlib import Path
from string import Formatter

import pytest

from patron.console.i18n import (
    LANGUAGES,
    Translator,
    catalog,
    dynamic_keys,
    fmt_decimal,
    fmt_int,
    fmt_percent,
    negotiate,
)

CONSOLE = Path(__file__).resolve().parents[2] / "src" / "patron" / "console"
_CALL = re.compile(r"""\b(?:t|translate)\(\s*["']([A-Za-z0-9_.-]+)["']""")
_PLURAL = re.compile(r"""\.plural\(\s*["']([A-Za-z0-9_.-]+)["']""")


def _used_keys() -> set[str]:
    sources = [*CONSOLE.glob("templates/*.html"), *CONSOLE.glob("*.py")]
    keys: set[str] = set()
    for source in sources:
        text = source.read_text(encoding="utf-8")
        keys.update(_CALL.findall(text))
        keys.update(f"{key}_{form}" for key in _PLURAL.findall(text) for form in ("one", "other"))
    return keys


def _placeholders(message: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(message) if name}


def test_catalogs_have_identical_keys() -> None:
    english = set(catalog("en"))
    for language in LANGUAGES:
        assert set(catalog(language)) == english, language


def test_every_key_used_in_templates_and_code_exists() -> None:
    used = _used_keys()
    assert len(used) > 100  # the scan really found the template calls
    for language in LANGUAGES:
        assert used - set(catalog(language)) == set(), language


def test_keys_built_at_run_time_exist() -> None:
    for language in LANGUAGES:
        assert dynamic_keys() - set(catalog(language)) == set(), language


def test_translations_are_filled_and_keep_placeholders() -> None:
    english = catalog("en")
    for language in LANGUAGES:
        for key, message in catalog(language).items():
            assert message.strip(), (language, key)
            assert _placeholders(message) == _placeholders(english[key]), (language, key)


@pytest.mark.parametrize(
    ("key", "chinese"),
    [
        ("segment.champions", "重要价值客户"),
        ("segment.hibernating", "沉睡客户"),
        ("segment.cant_lose", "重要挽留客户"),
        ("kpi.aov", "客单价"),
        ("kpi.repurchase_rate", "复购率"),
        ("nav.members", "会员"),
        ("login.submit", "登录"),
    ],
)
def test_chinese_uses_standard_crm_terms(key: str, chinese: str) -> None:
    assert Translator("zh-CN")(key) == chinese
    assert Translator("en")(key) != chinese


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("fr-FR,fr;q=0.9", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("en;q=0.5, zh;q=0.8", "zh-CN"),
        ("zh-Hans-CN", "zh-CN"),
        ("zh-TW", "zh-CN"),
        ("de, en;q=0", "en"),
        ("zh;q=abc, en", "en"),
    ],
)
def test_accept_language_negotiation(header: str | None, language: str) -> None:
    assert negotiate(header) == language


def test_numbers_have_thousands_separators_and_no_currency() -> None:
    assert fmt_int(4_372) == "4,372"
    assert fmt_decimal(10_227_831.894) == "10,227,831.89"
    assert fmt_decimal(-77_183.6) == "-77,183.60"
    assert fmt_percent(0.6480656) == "64.8%"


def test_plural_and_placeholders() -> None:
    english, chinese = Translator("en"), Translator("zh-CN")
    assert english.plural("members.total", 1) == "1 member"
    assert english.plural("members.total", 4_339) == "4,339 members"
    assert chinese.plural("members.total", 4_339) == "共 4,339 位会员"
    assert english("member.personal_hidden", role=english.role("analyst")) == (
        "Personal fields are hidden for the Analyst role."
    )
    assert english("no.such.key") == "no.such.key"
