"""Kohana route syntax: parameters, optional parts, regexes, defaults, order, reversal."""

from __future__ import annotations

from typing import Any

import pytest

from sendoff.hmvc import App, Route

DEFAULT = "(<controller>(/<action>(/<id>)))"


def default_route() -> Route:
    return Route("default", DEFAULT, {"controller": "welcome", "action": "index"})


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("", {"controller": "welcome", "action": "index"}),
        ("blog", {"controller": "blog", "action": "index"}),
        ("blog/edit", {"controller": "blog", "action": "edit"}),
        ("blog/edit/12", {"controller": "blog", "action": "edit", "id": "12"}),
    ],
)
def test_optional_segments_and_defaults(uri: str, expected: dict[str, str]) -> None:
    assert default_route().matches(uri) == expected


@pytest.mark.parametrize("uri", ["blog/edit/12/more", "blog.html", "a/b/c;d", "blog//edit"])
def test_segments_stop_at_slashes_and_punctuation(uri: str) -> None:
    assert default_route().matches(uri) is None


def test_action_defaults_to_index_without_a_default() -> None:
    assert Route("r", "<controller>").matches("shop") == {"controller": "shop", "action": "index"}


def test_per_parameter_regex() -> None:
    route = Route("blog", "blog/<year>(/<slug>)", regex={"year": r"\d{4}", "slug": r"[a-z-]+"})
    assert route.matches("blog/2011/request-execution") == {
        "year": "2011", "slug": "request-execution", "action": "index",
    }
    assert route.matches("blog/11") is None
    assert route.matches("blog/2011/Upper") is None


def test_a_regex_may_cross_slashes() -> None:
    route = Route("files", "media/<path>", {"controller": "media"}, regex={"path": ".+"})
    assert route.matches("media/css/site.css") == {
        "controller": "media", "action": "index", "path": "css/site.css",
    }


def test_literal_text_is_not_a_regex() -> None:
    route = Route("feed", "feed.xml(+<page>)", {"controller": "feed"})
    assert route.matches("feed.xml")
    assert route.matches("feed.xml+2") == {"controller": "feed", "action": "index", "page": "2"}
    assert route.matches("feedaxml") is None


def test_nested_optional_group_needs_its_prefix() -> None:
    route = Route("r", "shop(/<category>(/<item>))", {"controller": "shop"})
    assert route.matches("shop/tea/green") == {
        "controller": "shop", "action": "index", "category": "tea", "item": "green",
    }
    assert route.matches("shop/")  is None
    assert route.matches("shoptea") is None


def test_defaults_chain_as_in_kohana() -> None:
    route = Route("r", "<controller>(/<action>)").defaults({"controller": "x", "action": "list"})
    assert route.defaults() == {"controller": "x", "action": "list"}
    assert route.matches("items") == {"controller": "items", "action": "list"}


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("blog(/<id>", "unclosed"),
        ("blog/<id>)", "unbalanced"),
        ("blog/<1id>", "bad parameter"),
        ("blog/<id>/<id>", "twice"),
        ("blog/id>", "stray"),
    ],
)
def test_bad_patterns_are_refused(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Route("bad", pattern)


def test_regex_for_an_unknown_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown parameter"):
        Route("bad", "blog/<id>", regex={"slug": ".+"})


def test_routes_are_tried_in_the_order_added() -> None:
    app = App()
    app.route("special", "blog/latest", {"controller": "latest"})
    app.route("default", DEFAULT)
    with pytest.raises(ValueError, match="exists already"):
        app.route("special", "x")
    assert [r.name for r in app.routes.values()] == ["special", "default"]
    assert app.routes["special"].matches("blog/latest") is not None
    assert app.routes["default"].matches("blog/latest") is not None  # would match too


@pytest.mark.parametrize(
    ("params", "uri"),
    [
        ({}, ""),
        ({"controller": "welcome"}, ""),
        ({"controller": "blog"}, "blog"),
        ({"controller": "blog", "action": "index"}, "blog"),
        ({"controller": "blog", "action": "edit"}, "blog/edit"),
        ({"controller": "blog", "id": 5}, "blog/index/5"),
        ({"action": "list"}, "welcome/list"),
    ],
)
def test_reverse_routing(params: dict[str, object], uri: str) -> None:
    assert default_route().uri(**params) == uri


def test_reverse_routing_of_required_and_regex_parameters() -> None:
    route = Route("blog", "blog/<year>(/<slug>)", regex={"year": r"\d{4}"})
    assert route.uri(year=2011, slug="x") == "blog/2011/x"
    with pytest.raises(ValueError, match="year"):
        route.uri(slug="x")
    with pytest.raises(ValueError, match="does not match"):
        route.uri(year="eleven")


def test_app_url_is_an_absolute_path() -> None:
    app = App()
    app.route("widget", "widget/<name>(/<page>)", {"controller": "widget"})
    assert app.url("widget", name="news") == "/widget/news"
    assert app.url("widget", name="news", page=2) == "/widget/news/2"
    with pytest.raises(KeyError, match="no route named 'nope'"):
        app.url("nope")


def test_filters_route_by_method_and_may_change_params() -> None:
    from sendoff import Internal, Request
    from sendoff.hmvc import Controller

    app = App()

    def only_post(route: Route, params: dict[str, str], request: Request) -> Any:
        if request.method() != "POST":
            return None
        return {**params, "action": "create"}

    app.route("create", "items", {"controller": "items"}).filter(only_post)
    app.route("list", "items", {"controller": "items", "action": "list"})

    @app.controller("items")
    class Items(Controller):
        def action_create(self) -> None:
            self.response.body = "created"

        def action_list(self) -> None:
            self.response.body = "listed"

    client = Internal(app)
    assert Request("items").client(client).method("POST").execute().text == "created"
    assert Request("items").client(client).execute().text == "listed"
