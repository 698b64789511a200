"""The request-body size limit, checked before a route reads the body."""

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import PayloadTooLargeError


class BodyLimitMiddleware:
    """413 for a declared Content-Length over the limit; cuts off a chunked body past it."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def _refuse(self, send: Send) -> None:
        error = PayloadTooLargeError(
            f"request body is larger than the limit of {self.max_body} bytes",
            limit_bytes=self.max_body,
        )
        body = json.dumps(
            {"error": {"code": error.code, "message": error.message, "details": error.details}}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await self._refuse(send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body:
                raise PayloadTooLargeError(
                    f"request body is larger than the limit of {self.max_body} bytes",
                    limit_bytes=self.max_body,
                )
            return message

        await self.app(scope, counted, send)
