"""Seed 000's examples (Kohana PHP), sent through sendoff's blocking External client."""

from __future__ import annotations

from progress import heading
from receiver import Receiver

from sendoff import External, Request

EXAMPLES = [
    (
        "Simple GET request",
        "Request::factory('http://example.com/')->execute();",
        lambda url: Request.factory(url("/")),
    ),
    (
        "GET with a query string",
        "->query('foo', 'bar')->query('baz', 'qux')",
        lambda url: Request.factory(url("/example")).query("foo", "bar").query("baz", "qux"),
    ),
    (
        "Simple POST request",
        "->method(HTTP_Request::POST)->post('foo', 'bar')->post('baz', 'qux')",
        lambda url: Request.factory(url("/submit")).method("POST")
        .post("foo", "bar").post("baz", "qux"),
    ),
    (
        "Mixing GET and POST parameters",
        "->post('foo', 'bar')->post('baz', 'qux')->query('corge', 'grault')->query(...)",
        lambda url: Request.factory(url("/submit")).method("POST")
        .post("foo", "bar").post("baz", "qux")
        .query("corge", "grault").query("garply", "waldo"),
    ),
    (
        "A query in the URI, merged (the PHP module could not)",
        "Request::factory('http://example.com/example?page=2')->query('foo', 'bar')",
        lambda url: Request.factory(url("/example?page=2")).query("foo", "bar"),
    ),
]


def main() -> None:
    heading(1, "The seed's requests through External",
            "each Kohana example, written in sendoff, reaches a real server as intended")
    client = External(timeout=10)
    print(f"client: {client!r} (backend chosen by availability: pycurl, urllib3, stdlib)\n")
    with Receiver() as rx:
        for title, php, build in EXAMPLES:
            request = build(rx.url).client(client)
            response = request.execute()
            got = rx.received[-1]
            print(f"-- {title}")
            print(f"   Kohana : {php}")
            print(f"   sendoff: {request!r}")
            print(f"   server got: {got.method} {got.target}"
                  + (f"  body={got.body.decode()!r}" if got.body else ""))
            print(f"   response: {response.status} {response.reason} {response.text!r}\n")
        print(f"server received {rx.count()} of {len(EXAMPLES)} requests\n")
