"""HMVC (seed 003): an App page composed from two internal sub-requests and one call to
an external service, served over real HTTP by a WSGI server on loopback."""

from __future__ import annotations

import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

from progress import heading, progress
from receiver import Receiver

from sendoff import External, FireAndForget, Request
from sendoff.hmvc import App, Controller


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def build_app(analytics_url: str, analytics: FireAndForget) -> App:
    app = App()
    app.route("widget", "widget/<name>", {"controller": "widget", "action": "show"})
    app.route("default", "(<controller>(/<action>(/<id>)))", {"controller": "dashboard"})

    @app.controller("widget")
    class Widget(Controller):
        def action_show(self) -> None:
            user = self.request.query("user") or "Guest"
            texts = {"greeting": f"Hello {user}!", "news": "sendoff 0.1 is out"}
            name = self.request.param("name")
            self.response.body = f"<section id={name}>{texts.get(name, '?')}</section>"

    @app.controller("dashboard")
    class Dashboard(Controller):
        def action_index(self) -> None:
            user = self.request.query("user") or "Guest"
            greeting = Request(app.url("widget", name="greeting")).query("user", user).execute()
            news = Request("widget/news").execute()
            # The page does not need the answer of this call: it does not wait for it.
            Request(analytics_url).method("POST").post("page", "dashboard").post(
                "user", user
            ).client(analytics).execute()
            self.response.body = f"<main>{greeting.text}{news.text}</main>"

    return app


def main() -> None:
    heading(3, "HMVC (seed 003)", "one page from in-process sub-requests, without waiting"
            " for the external call it makes")
    with Receiver(delay=0.3) as analytics, FireAndForget(timeout=5) as fire:
        app = build_app(analytics.url("/track"), fire)
        seen: list[str] = []
        app.internal.emitter.on("before", lambda event: seen.append(event.request.uri()))
        server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_port}/dashboard?user=Ada"
            started = time.perf_counter()
            page = Request(url).client(External(timeout=10)).execute()
            took = (time.perf_counter() - started) * 1000
        finally:
            server.shutdown()
            server.server_close()
        print(f"GET {url}\n -> {page.status} {page.reason} in {took:.0f} ms: {page.text}\n")
        print(f"requests the App executed, in order: {seen}")
        with progress("waiting for the analytics call", lambda: f"{analytics.count()} arrived"):
            fire.flush(10)  # only so that the demo can show it arrived; a web app would not
        got = analytics.received[-1]
        print(f"the analytics service got: {got.method} {got.target} {got.body.decode()!r}")
        print(
            "(the analytics service takes 300 ms; the page did not wait for it: "
            "FireAndForget sent the call in the background)\n"
        )
