"""The request-body size limit, checked before a route reads the body."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.envelope import response_of
from service.errors import PayloadTooLargeError


class BodyLimitMiddleware:
    """413 for a declared Content-Length over the limit; cuts off a chunked body past it."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    def _too_large(self) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"request body is larger than the limit of {self.max_body} bytes",
            limit_bytes=self.max_body,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope["headers"]:  # not dict(headers): every request pays for this
            if name == b"content-length":
                declared = value  # the last one, as dict(headers) would have it
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await response_of(self._too_large(), {"Connection": "close"})(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body:
                raise self._too_large()
            return message

        await self.app(scope, counted, send)
