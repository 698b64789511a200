"""Opaque keyset page tokens: the last id seen, bound to the query's filters."""

import base64
import hashlib
import json
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.errors import InvalidInputError


def _fingerprint(filters: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(filters, sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ]


def encode_token(after_id: int, filters: dict[str, Any]) -> str:
    raw = json.dumps({"after": after_id, "q": _fingerprint(filters)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, filters: dict[str, Any]) -> int | None:
    """The id to continue after, or None for the first page."""
    if token is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        after = data["after"]
        fingerprint = data["q"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError("page_token is not a token this API issued") from exc
    # bool is an int to Python; ids are positive and fit a signed 64-bit column.
    if isinstance(after, bool) or not isinstance(after, int) or not 0 < after < 2**63:
        raise InvalidInputError("page_token is not a token this API issued")
    if fingerprint != _fingerprint(filters):
        raise InvalidInputError("page_token belongs to a query with other filters")
    return after


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


Row = TypeVar("Row", bound=_HasId)


def split_page(
    rows: list[Row], limit: int, filters: dict[str, Any]
) -> tuple[list[Row], str | None]:
    """Rows fetched with `limit + 1`: the page, and the token of the next page (None: last)."""
    page = rows[:limit]
    return page, encode_token(page[-1].id, filters) if len(rows) > limit else None


Model = TypeVar("Model")


def page_of(
    session: Session,
    model: type[Model],
    where: tuple[sa.ColumnElement[bool], ...],
    after_id: int | None,
    limit: int,
    *,
    newest_first: bool,
) -> list[Model]:
    """Up to `limit` rows of `model` matching `where`, by id (descending when `newest_first`),
    after the row `after_id` of the page before."""
    column: Any = model.id  # type: ignore[attr-defined]
    query = sa.select(model).where(*where)
    if after_id is not None:
        query = query.where(column < after_id if newest_first else column > after_id)
    order = column.desc() if newest_first else column
    return list(session.scalars(query.order_by(order).limit(limit)))
