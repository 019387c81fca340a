"""Defining rule tags and finding who carries them in the current build.

Definitions live in the operational store; membership is never stored: it is
the rule evaluated on the current build's profiles, so a tag follows its
members through every rebuild without a batch job.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from patron.analytics.artefacts import BuildReader
from patron.db.engine import OperationalStore
from patron.errors import ConflictError, NotFoundError, ValidationError
from patron.tags.models import TagDefinition
from patron.tags.rules import parse_rule, rule_filter, validate_rule
from patron.tags.schemas import TagCreate, TagProblem, TagRead, TagUpdate, TagValidation

__all__ = [
    "check_rule",
    "create_tag",
    "delete_tag",
    "get_tag",
    "list_tags",
    "member_tags",
    "tag_filter",
    "update_tag",
]


def check_rule(text: str) -> TagValidation:
    """Every problem of a rule (for a form), and its canonical form when valid."""
    problems = validate_rule(text)
    return TagValidation(
        valid=not problems,
        canonical=None if problems else str(parse_rule(text)),
        problems=[TagProblem(position=p.position, reason=p.reason, hint=p.hint, message=p.message) for p in problems],
    )


def _as_of(reader: BuildReader) -> date:
    return date.fromisoformat(str(reader.manifest["as_of"]))


def _present(reader: BuildReader) -> ir.Table:
    return reader.table("profiles")


def _count(reader: BuildReader, rule_text: str) -> int | None:
    """Members matching ``rule_text`` in the build; None when the build lacks a field it names."""
    profiles = _present(reader)
    rule = parse_rule(rule_text)
    try:
        predicate = rule_filter(rule, profiles, as_of=_as_of(reader))
    except ValidationError:  # a field this older build does not have yet
        return None
    return int(profiles.filter(predicate).count().execute())


def _read(row: TagDefinition, reader: BuildReader | None) -> TagRead:
    tag = TagRead.model_validate(row)
    if reader is not None:
        tag.members = _count(reader, row.rule)
    return tag


def list_tags(store: OperationalStore, reader: BuildReader | None = None) -> list[TagRead]:
    """Every tag by name, with its member count in the current build when a reader is given."""
    with store.session() as sess:
        rows = list(sess.scalars(select(TagDefinition).order_by(TagDefinition.name)))
        return [_read(row, reader) for row in rows]


def get_tag(store: OperationalStore, name: str, reader: BuildReader | None = None) -> TagRead:
    with store.session() as sess:
        row = sess.scalar(select(TagDefinition).where(TagDefinition.name == name))
        if row is None:
            raise NotFoundError(f"no tag named {name!r}")
        return _read(row, reader)


def create_tag(store: OperationalStore, body: TagCreate, actor: str) -> TagRead:
    """Store a tag; its rule is parsed first (422 with the position of the first problem)."""
    canonical = str(parse_rule(body.rule))
    try:
        with store.session() as sess:
            row = TagDefinition(name=body.name.strip(), rule=canonical, description=body.description, created_by=actor)
            sess.add(row)
            sess.flush()
            return TagRead.model_validate(row)
    except IntegrityError as exc:
        raise ConflictError(f"a tag named {body.name!r} exists already") from exc


def update_tag(store: OperationalStore, name: str, body: TagUpdate) -> TagRead:
    with store.session() as sess:
        row = sess.scalar(select(TagDefinition).where(TagDefinition.name == name))
        if row is None:
            raise NotFoundError(f"no tag named {name!r}")
        if body.rule is not None:
            row.rule = str(parse_rule(body.rule))
        if body.description is not None:
            row.description = body.description
        sess.flush()
        return TagRead.model_validate(row)


def delete_tag(store: OperationalStore, name: str) -> None:
    with store.session() as sess:
        row = sess.scalar(select(TagDefinition).where(TagDefinition.name == name))
        if row is None:
            raise NotFoundError(f"no tag named {name!r}")
        sess.delete(row)


def tag_filter(store: OperationalStore, reader: BuildReader, name: str, table: ir.Table) -> ir.BooleanValue:
    """The predicate on ``table`` (the build's profiles, maybe filtered) for the members carrying tag ``name``."""
    tag = get_tag(store, name)
    return rule_filter(parse_rule(tag.rule), table, as_of=_as_of(reader))


def member_tags(store: OperationalStore, reader: BuildReader, member_key: str) -> list[str]:
    """Names of the tags one member carries in the current build (one query for all tags)."""
    tags = list_tags(store)
    if not tags:
        return []
    profiles = _present(reader)
    one = profiles.filter(profiles.member_key == member_key)
    flags = {}
    for index, tag in enumerate(tags):
        try:
            flags[f"t{index}"] = ibis.ifelse(rule_filter(parse_rule(tag.rule), one, as_of=_as_of(reader)), 1, 0)
        except ValidationError:  # a field this build lacks: the member cannot carry the tag
            continue
    if not flags:
        return []
    rows = one.select(**flags).to_pyarrow().to_pylist()
    if not rows:
        return []
    return [tags[int(col[1:])].name for col, hit in rows[0].items() if hit]
