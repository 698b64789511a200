"""Form posts come from the dashboard's own pages: a browser sends `Origin` (or at least
`Referer`) with every POST, so one naming another site is a cross-site form and is refused,
login included. The SameSite=Strict cookie alone let such a POST through."""

from urllib.parse import urlsplit

from fastapi import Request


class CrossSiteFormError(Exception):
    """This form was posted from another site; the dashboard accepts forms from its own pages."""


async def same_origin_forms(request: Request) -> None:
    if request.method != "POST":
        return
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if claimed is None:
        return  # not a browser (a cross-site form always says where it comes from)
    # Host and port only: behind a TLS proxy the app may see http while the browser says https.
    if claimed == "null" or urlsplit(claimed).netloc != request.headers.get("host", ""):
        raise CrossSiteFormError
