"""GET /v1/whoami: which key is calling, with which role."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from models import Role
from service.api.schemas import PrincipalSchema
from service.auth import current_principal, require_role

bp = Blueprint("whoami", __name__, url_prefix="/v1", description="The calling API key")


@bp.get("/whoami")
@bp.response(200, PrincipalSchema)
@bp.doc(security=[{"ApiKey": []}])
@require_role(Role.BACKEND, Role.ACCOUNTANT, Role.ADMIN)
def whoami() -> dict[str, Any]:
    """Show the calling key's name, role and prefix."""
    principal = current_principal()
    return {"name": principal.name, "role": principal.role.value, "prefix": principal.prefix}
