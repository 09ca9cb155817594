"""Starlette: the README's Starlette recipe, plus the shared test endpoints."""

from __future__ import annotations

import starlette.responses
from common import handle_async
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sendoff import background
from sendoff.asgi import BackgroundMiddleware


def send_receipt(order_id: int) -> None:  # an e-mail in real life
    print(f"receipt for order {order_id} sent", flush=True)


async def place_order(request: Request) -> JSONResponse:
    order_id = int(request.path_params["order_id"])
    background.add(send_receipt, order_id)  # runs once the client has this response
    return JSONResponse({"order": order_id, "status": "placed"})


async def endpoint(request: Request) -> starlette.responses.Response:
    body = await handle_async(request.url.path, dict(request.query_params))
    return starlette.responses.Response(body, media_type="text/plain")


app = Starlette(
    routes=[
        Route("/orders/{order_id:int}", place_order, methods=["POST"]),
        Route("/{path:path}", endpoint),
    ],
    middleware=[Middleware(BackgroundMiddleware)],
)
