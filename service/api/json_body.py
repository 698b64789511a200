"""Large JSON bodies parsed in one pass by pydantic's JSON parser.

FastAPI decodes a body with `json.loads` and then validates the Python objects; for a batch of
10,000 runs that builds and walks every dict twice. `JsonBody(Model)` reads the raw bytes on the
event loop and validates them with `Model.model_validate_json` in the route's worker thread.
Errors keep FastAPI's shape (`loc` starts with "body"), and the OpenAPI document still shows the
model as the request body (see `openapi_with_bodies`).
"""

from typing import Any, Generic, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)

_REGISTERED: list[type[BaseModel]] = []


class JsonBody(Generic[Model]):
    def __init__(self, model: type[Model]) -> None:
        self.model = model
        _REGISTERED.append(model)

    async def read(self, request: Request) -> bytes:
        return await request.body()

    def parse(self, raw: bytes) -> Model:
        try:
            return self.model.model_validate_json(raw)
        except ValidationError as exc:
            errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
            raise RequestValidationError(errors) from exc

    @property
    def openapi_extra(self) -> dict[str, Any]:
        reference = {"$ref": f"#/components/schemas/{self.model.__name__}"}
        return {
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": reference}},
            }
        }


def openapi_with_bodies(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with the schemas of every `JsonBody` model (built once)."""
    if app.openapi_schema is None:
        spec = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for model in _REGISTERED:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        spec["components"]["schemas"] = dict(sorted(schemas.items()))
        app.openapi_schema = spec
    return app.openapi_schema
