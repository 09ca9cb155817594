"""Flask: the README's Flask recipe, plus the shared test endpoints."""

from __future__ import annotations

import flask
from common import handle
from flask import Flask

from sendoff import background
from sendoff.wsgi import BackgroundMiddleware

app = Flask(__name__)
app.wsgi_app = BackgroundMiddleware(app.wsgi_app)


def send_receipt(order_id: int) -> None:  # an e-mail in real life
    print(f"receipt for order {order_id} sent", flush=True)


@app.post("/orders/<int:order_id>")
def place_order(order_id: int) -> dict[str, object]:
    background.add(send_receipt, order_id)  # runs once the client has this response
    return {"order": order_id, "status": "placed"}


@app.get("/<path:path>")
def endpoint(path: str) -> str:
    return handle("/" + path, flask.request.args.to_dict())
