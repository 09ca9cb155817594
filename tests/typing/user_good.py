"""A user's script that uses sendoff correctly: mypy --strict must find nothing."""

from __future__ import annotations

from typing import assert_type

import sendoff
from sendoff import External, FireAndForget, Internal, Receipt, Request, Response, background
from sendoff.hmvc import App

URL = "https://api.example.com/hook"

request = Request(URL).method("POST").post("foo", "bar").query("corge", "grault")
assert_type(request, Request[Response])
assert_type(request.method(), str)
assert_type(request.query("corge"), str | bytes | list[str | bytes] | None)
assert_type(request.headers("X-Trace", "1").timeout(5).deadline(10), Request[Response])
assert_type(Request(URL).client(External()).execute(), Response)
assert_type(Request(URL, client=FireAndForget()), Request[Receipt])

fired = Request(URL).client(FireAndForget(timeout=10, mode="inline")).execute()
assert_type(fired, Receipt)
answer = fired.wait(timeout=5)
if answer is not None:
    print(answer.status, answer.text)

receipt = sendoff.fire("POST", URL, json={"event": "signup"}, data=None, params={"a": 1})
assert_type(receipt, Receipt)
client = FireAndForget(on_full="block", pipeline=2, deadline=30.0)
sendoff.set_default_client(client)
assert_type(sendoff.flush(5), bool)
external = External(backend="urllib3", follow_redirects=True)
response = external.execute(Request(URL))
assert_type(response.status, int)
internal = Internal(App(), timeout=5)
assert_type(Request("users/42").client(internal).execute(), Response)


def notify(order_id: int, *, channel: str = "email") -> None:
    """A task."""


async def notify_later(order_id: int) -> None:
    """An async task."""


background.add(notify, 42, channel="sms")
background.add(notify_later, 42)
app = sendoff.wsgi.BackgroundMiddleware(lambda environ, start: [b""], executor="thread")


async def main() -> None:
    late = await receipt
    assert_type(late, Response | None)
