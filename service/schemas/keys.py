"""API keys as the admin API shows them. The token appears once, in the create response."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.schemas.common import SafeText, StrictModel

Scope = Literal["read", "write", "admin"]


class KeyCreate(StrictModel):
    name: SafeText = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(min_length=1, description="Repeated scopes count once.")

    @field_validator("scopes")
    @classmethod
    def _unique(cls, scopes: list[Scope]) -> list[Scope]:
        # Stored comma-joined in 64 characters: duplicates overflowed it (a 500 on PostgreSQL).
        return list(dict.fromkeys(scopes))

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "orchestrator", "scopes": ["write"]}]}
    )


class KeyOut(BaseModel):
    prefix: str
    name: str
    scopes: list[Scope]
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    token: str = Field(description="The bearer token. Shown once; store it now.")
