"""A user's script with one typical mistake per marked line: mypy --strict must report an
error on every line that ends with "# mistake", and on no other line."""

from __future__ import annotations

import sendoff
from sendoff import External, FireAndForget, Request, background

URL = "https://api.example.com/hook"

Request(URL).methd("POST")  # mistake
Request(URL).method("POST").execute().stauts  # mistake
Request(URL).post("foo", "bar").quey("a", "b")  # mistake
FireAndForget(mode="proces")  # mistake
FireAndForget(on_full="wait")  # mistake
External(backend="curl")  # mistake


def notify(order_id: int, *, channel: str = "email") -> None:
    """A task."""


background.add(notify, "42")  # mistake
background.add(notify, 42, chanel="sms")  # mistake
background.add(notify)  # mistake

receipt = FireAndForget().fire("POST", URL)
receipt.wait(5).status  # mistake
sendoff.fire("POST", URL, data="a=1&b=2")  # mistake
Request(URL).client(FireAndForget()).execute().body  # mistake
Request(URL).timeout("5")  # mistake
