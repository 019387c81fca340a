"""Import runs and their quarantine."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from patron.api.deps import Rt, require
from patron.auth.service import Principal
from patron.ingest.schemas import ImportRead, QuarantinePage
from patron.ingest.service import list_imports, quarantine_page

router = APIRouter(prefix="/imports", tags=["imports"])

Reader = Annotated[Principal, Depends(require("imports:read"))]


@router.get("", summary="Recent import runs with their reconciliation", response_model=list[ImportRead])
def imports(runtime: Rt, _caller: Reader, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[ImportRead]:
    return list_imports(runtime, limit)


@router.get("/{run_id}/quarantine", summary="Rows an import quarantined", response_model=QuarantinePage)
def quarantine(
    runtime: Rt,
    _caller: Reader,
    run_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> QuarantinePage:
    return quarantine_page(runtime, run_id, page, page_size)
