"""FastAPI: the README's FastAPI recipe, plus the shared test endpoints."""

from __future__ import annotations

import fastapi
from common import handle_async
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from sendoff import background
from sendoff.asgi import BackgroundMiddleware

app = FastAPI()
app.add_middleware(BackgroundMiddleware)


def send_receipt(order_id: int) -> None:  # an e-mail in real life
    print(f"receipt for order {order_id} sent", flush=True)


@app.post("/orders/{order_id}")
def place_order(order_id: int) -> dict[str, object]:
    background.add(send_receipt, order_id)  # runs once the client has this response
    return {"order": order_id, "status": "placed"}


@app.get("/{path:path}", response_class=PlainTextResponse)
async def endpoint(path: str, request: fastapi.Request) -> str:
    return await handle_async("/" + path, dict(request.query_params))
