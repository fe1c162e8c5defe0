"""REST API version 1 (``/api/v1``)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.v1.offerings import router as offerings_router

router = APIRouter(prefix="/api/v1")
router.include_router(offerings_router)

__all__ = ["router"]
