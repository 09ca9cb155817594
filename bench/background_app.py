"""The apps ``suite_background`` serves: each endpoint adds a task of ``?ms=N`` (0: none).

``/sendoff``  ``background.add(work, ...)``    (WSGI: Flask; ASGI: Starlette)
``/native``   the framework's own way: Flask ``call_on_close``, Starlette ``BackgroundTask``

Every request and every finished task is logged, so the suite counts what the server did.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, make_response, request
from flask.wrappers import Response as FlaskResponse
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sendoff import asgi, background, wsgi
from sendoff.background import ThreadExecutor

logging.basicConfig(level=logging.INFO, format="%(message)s")
log = logging.getLogger("bench")


def work(ms: int, tag: str) -> None:
    time.sleep(ms / 1000)
    log.info("task done %s", tag)


# -- WSGI (gunicorn) ---------------------------------------------------------------------

flask_app = Flask(__name__)


@flask_app.get("/sendoff")
def flask_sendoff() -> str:
    ms = int(request.args.get("ms", "0"))
    if ms:
        background.add(work, ms, "sendoff")
    return "ok"


@flask_app.get("/native")
def flask_native() -> FlaskResponse:
    ms = int(request.args.get("ms", "0"))
    response = make_response("ok")
    if ms:
        response.call_on_close(lambda: work(ms, "native"))
    return response


wsgi_inline = wsgi.BackgroundMiddleware(flask_app)
wsgi_thread = wsgi.BackgroundMiddleware(flask_app, executor=ThreadExecutor(max_workers=4))


# -- ASGI (uvicorn) ----------------------------------------------------------------------


async def starlette_sendoff(req: Request) -> PlainTextResponse:
    ms = int(req.query_params.get("ms", "0"))
    if ms:
        background.add(work, ms, "sendoff")
    return PlainTextResponse("ok")


async def starlette_native(req: Request) -> PlainTextResponse:
    ms = int(req.query_params.get("ms", "0"))
    task = BackgroundTask(work, ms, "native") if ms else None
    return PlainTextResponse("ok", background=task)


starlette_app = Starlette(
    routes=[Route("/sendoff", starlette_sendoff), Route("/native", starlette_native)]
)
asgi_inline = asgi.BackgroundMiddleware(starlette_app)
