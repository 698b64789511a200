"""Generate service/client/sync.py from service/client/aio.py (the one source of the client).

    python scripts/make_sync_client.py          # rewrite sync.py
    python scripts/make_sync_client.py --check  # exit 1 if sync.py is not what this writes

unasync strips async/await and renames the async names below; ruff then sorts the imports, turns
`for x in xs: yield x` (an async generator's only form) into `yield from xs` and formats the
result, so the generated file passes `make lint` as it is.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import unasync

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "service" / "client" / "aio.py"
TARGET = ROOT / "service" / "client" / "sync.py"

REPLACEMENTS = {
    "AsyncScalingClient": "ScalingClient",
    "AsyncBaseTransport": "BaseTransport",
    "AsyncClient": "Client",
    "AsyncRetrying": "Retrying",
    "AsyncPageFetch": "PageFetch",
    "aclose": "close",
    "anyio": "time",
    "upload_chunks_async": "upload_chunks",
}
HEADER = "# Generated from aio.py by scripts/make_sync_client.py (`make client`): do not edit.\n"


def generate() -> str:
    """The text sync.py should have."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp, "_async", "client.py")
        source.parent.mkdir()
        source.write_text(SOURCE.read_text())
        rule = unasync.Rule("/_async/", "/_sync/", additional_replacements=REPLACEMENTS)
        unasync.unasync_files([str(source)], rules=[rule])
        text = HEADER + Path(tmp, "_sync", "client.py").read_text()
    text = _ruff(
        ["check", "--fix-only", "--unsafe-fixes", "--select", "I,F401,UP028", "--quiet"], text
    )
    return _ruff(["format", "--quiet"], text)


def _ruff(args: list[str], text: str) -> str:
    # --stdin-filename: the project's ruff settings and the file's own path apply.
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--stdin-filename", str(TARGET), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args()
    text = generate()
    if args.check:
        if TARGET.read_text() != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run `make client`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
