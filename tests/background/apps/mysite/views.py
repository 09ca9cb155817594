"""The README's Django view, plus the shared test endpoints (sync for WSGI, async for ASGI)."""

from __future__ import annotations

from common import handle, handle_async
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponse

from sendoff import background


def send_receipt(order_id: int) -> None:  # an e-mail in real life
    print(f"receipt for order {order_id} sent", flush=True)


def place_order(request: HttpRequest, order_id: int) -> JsonResponse:
    background.add(send_receipt, order_id)  # runs once the client has this response
    return JsonResponse({"order": order_id, "status": "placed"})


def endpoint(request: HttpRequest, path: str) -> HttpResponse:
    return HttpResponse(handle("/" + path, request.GET.dict()), content_type="text/plain")


async def async_endpoint(request: HttpRequest, path: str) -> HttpResponse:
    body = await handle_async("/" + path, request.GET.dict())
    return HttpResponse(body, content_type="text/plain")
