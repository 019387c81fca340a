"""The rule-tags page: tags with their member counts, and the form that checks and adds a rule."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from patron.analytics.artefacts import BuildReader
from patron.console.i18n import Translator
from patron.console.member_insight import tag_members_link
from patron.db.engine import OperationalStore
from patron.tags.schemas import TagCreate, TagProblem, TagValidation
from patron.tags.service import check_rule, list_tags

__all__ = ["Submission", "TagForm", "check_form", "problem_marks", "tags_context"]

_SHOWN = 60  # characters of the rule shown on each side of a problem


@dataclass(frozen=True)
class TagForm:
    """What the operator typed, and what was wrong with it."""

    name: str = ""
    rule: str = ""
    description: str = ""
    errors: tuple[str, ...] = ()
    problems: tuple[dict[str, Any], ...] = ()
    canonical: str | None = None  # shown after a successful check

    @property
    def failed(self) -> bool:
        return bool(self.errors or self.problems)


def problem_marks(rule: str, problem: TagProblem) -> dict[str, Any]:
    """The rule split around the problem's position, to point at it: before, the character at it, after."""
    at = min(max(problem.position, 0), len(rule))
    return {
        "position": problem.position,
        "column": problem.position + 1,
        "reason": problem.reason,
        "hint": problem.hint,
        "before": ("…" if at > _SHOWN else "") + rule[max(0, at - _SHOWN) : at],
        "at": rule[at : at + 1] or " ",
        "after": rule[at + 1 : at + 1 + _SHOWN] + ("…" if len(rule) > at + 1 + _SHOWN else ""),
    }


@dataclass(frozen=True)
class Submission:
    """A checked form: the tag to create if it is valid."""

    form: TagForm
    tag: TagCreate | None = field(default=None)


def check_form(name: str, rule: str, description: str, translate: Translator, *, rule_only: bool = False) -> Submission:
    """Check the rule (every problem, by position) and, unless ``rule_only``, the name and description.

    The submission carries the tag to store when everything is valid.
    """
    name, description = name.strip(), description.strip()
    typed = TagForm(name=name[:200], rule=rule[:4000], description=description[:1000])
    if not rule.strip():
        return Submission(replace(typed, errors=(translate("tags.rule_required"),)))
    validation: TagValidation = check_rule(rule)
    problems = tuple(problem_marks(rule, p) for p in validation.problems)
    errors: list[str] = []
    tag: TagCreate | None = None
    if not rule_only:
        try:
            tag = TagCreate(name=name, rule=rule, description=description)
        except PydanticValidationError as exc:
            errors.extend(translate(f"tags.invalid.{error['loc'][0]}") for error in exc.errors())
    form = replace(typed, errors=tuple(dict.fromkeys(errors)), problems=problems, canonical=validation.canonical)
    return Submission(form, None if form.failed else tag)


def tags_context(store: OperationalStore, reader: BuildReader | None, translate: Translator) -> dict[str, Any]:
    """Every tag by name with its member count in the current build (None without a build or a field)."""
    rows = [
        {
            "name": tag.name,
            "rule": tag.rule,
            "description": tag.description,
            "members": tag.members,
            "href": tag_members_link(tag.name),
            "created_by": tag.created_by,
            "created_at": tag.created_at,
        }
        for tag in list_tags(store, reader)
    ]
    return {"tags": rows}
