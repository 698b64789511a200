"""API keys, for admins. The token is shown once, in the create response."""

from typing import Annotated

from fastapi import APIRouter, Path, status

from service import auth
from service.api.deps import Admin, KeyCacheDep, SessionDep
from service.schemas.common import SafeText, errors
from service.schemas.keys import KeyCreate, KeyCreated, KeyOut
from service.store.models import ApiKey

router = APIRouter(prefix="/v1/keys", tags=["keys"])


def _out(row: ApiKey) -> KeyOut:
    return KeyOut(
        prefix=row.prefix,
        name=row.name,
        scopes=row.scopes.split(","),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key",
    description="Scopes: `read` (GET), `write` (add and change data; implies read), `admin` "
    "(keys, deletions; implies write). The token is in this response only. Needs `admin`.",
    responses=errors(),
)
def create_key(body: KeyCreate, session: SessionDep, _: Admin) -> KeyCreated:
    row, token = auth.create_key(session, body.name, list(body.scopes))
    return KeyCreated(**_out(row).model_dump(), token=token)


@router.get(
    "",
    summary="List API keys",
    description="Every key's prefix, name, scopes and state; never the secret. Needs `admin`.",
    responses=errors(),
)
def list_keys(session: SessionDep, _: Admin) -> list[KeyOut]:
    return [_out(row) for row in auth.list_keys(session)]


@router.delete(
    "/{prefix}",
    summary="Revoke an API key",
    description="The key stops working at once; its record stays. Needs `admin`.",
    responses=errors(404),
)
def revoke_key(
    prefix: Annotated[SafeText, Path(description="The key's prefix.", examples=["7f8333bb3606"])],
    session: SessionDep,
    cache: KeyCacheDep,
    _: Admin,
) -> KeyOut:
    revoked = auth.revoke_key(session, prefix)
    cache.clear()
    return _out(revoked)
