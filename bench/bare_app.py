"""The baseline of bench/api.py: FastAPI's hello world, served by uvicorn exactly as
`scaling-service serve` serves the service (same options, one worker). Usage:

    python bench/bare_app.py PORT
"""

import sys

import uvicorn
from fastapi import FastAPI

from service.cli.server import uvicorn_options

app = FastAPI()


@app.get("/")
async def hello() -> dict[str, str]:
    return {"message": "Hello World"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), **uvicorn_options("warning"))
