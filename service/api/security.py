"""Security headers on every response."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The docs pages (Swagger UI, ReDoc) run inline scripts, so the strict CSP is set only off them.
_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)
_CSP = (b"content-security-policy", b"default-src 'none'")
_DOCS_PATHS = ("/docs", "/redoc", "/openapi.json")


class SecurityHeadersMiddleware:
    """Adds each header the response does not set itself (a route may choose its own)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = _HEADERS if scope["path"].startswith(_DOCS_PATHS) else (*_HEADERS, _CSP)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(header for header in added if header[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
