"""Rule tags: define, check and list the conditions that tag members."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request, status

from patron.analytics.artefacts import BuildReader, reader_for
from patron.api.deps import Rt, audit, require
from patron.auth.service import Principal
from patron.errors import NotFoundError
from patron.tags.schemas import TAG_NAME, TagCreate, TagRead, TagUpdate, TagValidation
from patron.tags.service import check_rule, create_tag, delete_tag, get_tag, list_tags, update_tag

router = APIRouter(prefix="/tags", tags=["tags"])

Manage = Annotated[Principal, Depends(require("tags:manage"))]
Read = Annotated[Principal, Depends(require("segments:read"))]
TagName = Annotated[str, Path(pattern=TAG_NAME)]


def _reader(runtime: Rt) -> BuildReader | None:
    try:
        return reader_for(runtime.settings.artefact_dir)
    except NotFoundError:  # nothing built yet: definitions without counts
        return None


@router.get("", summary="Rule tags with their member counts in the current build", response_model=list[TagRead])
def tags(runtime: Rt, _caller: Read) -> list[TagRead]:
    return list_tags(runtime.store, _reader(runtime))


@router.post("", summary="Define a rule tag", status_code=status.HTTP_201_CREATED, response_model=TagRead)
def add_tag(body: TagCreate, request: Request, runtime: Rt, caller: Manage) -> TagRead:
    created = create_tag(runtime.store, body, caller.label)
    audit(request, runtime, caller.label, "tag.create", f"tag:{created.id}")
    return get_tag(runtime.store, created.name, _reader(runtime))


@router.post("/validate", summary="Check a rule without saving it", response_model=TagValidation)
def validate(_caller: Manage, rule: Annotated[str, Body(embed=True, min_length=1, max_length=2000)]) -> TagValidation:
    return check_rule(rule)


@router.get("/{name}", summary="One rule tag", response_model=TagRead)
def tag(runtime: Rt, _caller: Read, name: TagName) -> TagRead:
    return get_tag(runtime.store, name, _reader(runtime))


@router.patch("/{name}", summary="Change a tag's rule or description", response_model=TagRead)
def change_tag(body: TagUpdate, request: Request, runtime: Rt, caller: Manage, name: TagName) -> TagRead:
    updated = update_tag(runtime.store, name, body)
    audit(request, runtime, caller.label, "tag.update", f"tag:{updated.id}")
    return get_tag(runtime.store, name, _reader(runtime))


@router.delete("/{name}", summary="Delete a rule tag; returns what was deleted", response_model=TagRead)
def remove_tag(request: Request, runtime: Rt, caller: Manage, name: TagName) -> TagRead:
    deleted = get_tag(runtime.store, name)
    delete_tag(runtime.store, name)
    audit(request, runtime, caller.label, "tag.delete", f"tag:{deleted.id}")
    return deleted
