"""Templates (Jinja2, autoescaped) and the dashboard's response headers."""

import math
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined

# The pages load only their own stylesheet and images and post only to themselves.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def number(value: float | None, digits: int = 3) -> str:
    """3 significant digits: 7.33e+10, 20.1, 1.94; a dash for nothing."""
    if value is None:
        return "–"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}g}"


def field(value: float | int | None) -> str:
    """A number as a form shows it for editing, as short as exact: 2e12, 1e9, 0.1, 8."""
    if value is None:
        return ""
    if isinstance(value, int) or not math.isfinite(value):
        return str(value)
    if value != 0 and not 1e-3 <= abs(value) < 1e5:
        digits = next(p for p in range(17) if float(f"{value:.{p}e}") == value)
        mantissa, exponent = f"{value:.{digits}e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:.15g}"


_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
)
_env.filters["num"] = number
_env.filters["field"] = field
templates = Jinja2Templates(env=_env)


def page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers["content-security-policy"] = CSP
    return response
