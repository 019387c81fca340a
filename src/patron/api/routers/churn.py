"""The churn model's report: validation metrics of the model and its baselines, calibration, importances."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends

from patron.api.deps import Reader, require
from patron.auth.service import Principal
from patron.churn.schemas import ChurnReport
from patron.churn.service import read_churn_report

router = APIRouter(tags=["churn"])


@router.get(
    "/churn",
    summary="Churn model of the current build: validation AUC, precision@k, Brier, calibration vs baselines",
    response_model=ChurnReport,
)
def churn(_caller: Annotated[Principal, Depends(require("segments:read"))], reader: Reader) -> ChurnReport:
    return read_churn_report(Path(reader.manifest["path"]))
