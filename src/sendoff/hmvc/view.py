"""The View: a Jinja2 template and its data (Kohana's ``View::factory('hello')``).

Jinja2 is the optional extra ``views`` (``pip install sendoff[views]``). Templates are
looked up in the ``views`` directories of the App executing the request, else in those
given to :meth:`View.configure`. HTML and XML templates are autoescaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from ..http.frame import current_frame

if TYPE_CHECKING:
    import jinja2

_MISSING: Any = object()


@runtime_checkable
class HasViews(Protocol):
    """An application with template directories of its own (the HMVC ``App``)."""

    def view_environment(self) -> jinja2.Environment | None: ...


def make_environment(paths: Iterable[str | Path], **options: Any) -> jinja2.Environment:
    """A Jinja2 environment loading templates from ``paths``."""
    try:
        import jinja2
    except ImportError:
        raise ImportError("sendoff views need Jinja2: pip install 'sendoff[views]'") from None
    options.setdefault("autoescape", jinja2.select_autoescape(("html", "htm", "xml")))
    return jinja2.Environment(loader=jinja2.FileSystemLoader([str(p) for p in paths]), **options)


class View:
    """A template with data; assign it to ``response.body`` and it is rendered::

        self.response.body = View("hello.html", name=name)
        View.factory("hello.html").set("name", name)   # Kohana's chained form
    """

    __slots__ = ("data", "file")

    _default: ClassVar[jinja2.Environment | None] = None
    _globals: ClassVar[dict[str, Any]] = {}

    def __init__(self, file: str, /, **data: Any) -> None:
        self.file = file
        self.data = data

    @classmethod
    def factory(cls, file: str, /, **data: Any) -> View:
        """Kohana's ``View::factory($file, $data)``: the same as ``View(file, **data)``."""
        return cls(file, **data)

    @classmethod
    def configure(cls, *paths: str | Path, **options: Any) -> None:
        """Template directories (and Jinja2 options) for views rendered outside an App
        that has ``views`` of its own."""
        cls._default = make_environment(paths, **options)

    @classmethod
    def set_global(cls, key: str, value: Any) -> None:
        """A variable every view sees (Kohana's ``View::set_global``)."""
        cls._globals[key] = value

    def __repr__(self) -> str:
        return f"<View {self.file!r}>"

    def set(self, key: str | Mapping[str, Any], value: Any = _MISSING) -> View:
        """Set one variable, or several from a mapping; chains."""
        if isinstance(key, Mapping):
            self.data.update(key)
        elif value is _MISSING:
            raise TypeError(f"View.set({key!r}) needs a value")
        else:
            self.data[key] = value
        return self

    def render(self) -> str:
        """The rendered template."""
        frame = current_frame()
        app = frame.app if frame is not None else None
        environment = app.view_environment() if isinstance(app, HasViews) else None
        if environment is None:
            environment = View._default
        if environment is None:
            raise LookupError(
                f"no template directories to find {self.file!r} in: "
                "give the App views='...' or call View.configure('...')"
            )
        data = {**View._globals, **self.data} if View._globals else self.data
        return environment.get_template(self.file).render(data)

    __str__ = render
