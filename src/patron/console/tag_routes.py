"""Console routes of rule tags: ``GET /tags``, ``POST /tags`` (check or add), ``POST /tags/delete``.

Reading needs ``segments:read``; adding and deleting need ``tags:manage`` and a CSRF token.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from patron.api.deps import Rt, audit
from patron.auth.service import Principal
from patron.console.access import User, can, check_csrf, current_reader, page_user, redirect, require
from patron.console.csrf import CSRF_FIELD
from patron.console.i18n import Translator
from patron.console.rendering import language_of, render
from patron.console.tag_view import TagForm, check_form, tags_context
from patron.console.views import build_info
from patron.errors import ConflictError, NotFoundError
from patron.runtime import Runtime
from patron.tags.service import create_tag, delete_tag, get_tag

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form()]


def _page(
    request: Request,
    runtime: Runtime,
    user: Principal,
    form: TagForm,
    notices: list[str] | None = None,
    status: int = 200,
) -> Response:
    translate = Translator(language_of(request))
    reader = current_reader(runtime)
    context: dict[str, Any] = {
        "user": page_user(user),
        "active": "tags",
        "build": None if reader is None else build_info(reader),
        "no_build": reader is None,
        "can_manage": can(user, "tags:manage"),
        "form": form,
        "notices": notices or [],
        **tags_context(runtime.store, reader, translate),
    }
    return render(request, "tags.html", context, status=status)


def _flash(request: Request, translate: Translator) -> list[str]:
    """The message of the action that redirected here (its name comes back through the query)."""
    params = request.query_params
    if added := params.get("added"):
        return [translate("tags.added", name=added[:64])]
    if deleted := params.get("deleted"):
        return [translate("tags.deleted", name=deleted[:64])]
    return []


@router.get("/tags")
def tags(request: Request, runtime: Rt, user: User) -> Response:
    require(user, "segments:read")
    return _page(request, runtime, user, TagForm(), _flash(request, Translator(language_of(request))))


@router.post("/tags")
def add_tag(
    request: Request,
    runtime: Rt,
    user: User,
    name: Text = "",
    rule: Text = "",
    description: Text = "",
    action: Text = "add",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    check_csrf(request, runtime, csrf_token)
    require(user, "segments:read", "tags:manage")
    translate = Translator(language_of(request))
    rule_only = action == "check"  # the Check button: parse the rule, store nothing
    checked = check_form(name, rule, description, translate, rule_only=rule_only)
    if checked.form.failed:
        return _page(request, runtime, user, checked.form, status=422)
    if rule_only or checked.tag is None:
        return _page(request, runtime, user, checked.form)
    try:
        created = create_tag(runtime.store, checked.tag, user.label)
    except ConflictError:
        failed = TagForm(name, rule, description, errors=(translate("tags.name_taken", name=checked.tag.name),))
        return _page(request, runtime, user, failed, status=409)
    audit(request, runtime, user.label, "tag.create", f"tag:{created.id}", channel="console")
    return redirect("/tags?" + urlencode({"added": created.name}))


@router.post("/tags/delete")
def remove_tag(
    request: Request,
    runtime: Rt,
    user: User,
    name: Text = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    check_csrf(request, runtime, csrf_token)
    require(user, "segments:read", "tags:manage")
    translate = Translator(language_of(request))
    try:
        gone = get_tag(runtime.store, name)
        delete_tag(runtime.store, name)
    except NotFoundError:
        return _page(request, runtime, user, TagForm(), [translate("tags.not_found", name=name[:64])], status=404)
    audit(request, runtime, user.label, "tag.delete", f"tag:{gone.id}", channel="console")
    return redirect("/tags?" + urlencode({"deleted": gone.name}))
