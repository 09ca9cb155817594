"""The seed's example: tasks sum 1+2+4 then write 7 to a file, while the response says 0."""

import os
import tempfile

from sendoff import background
from sendoff.wsgi import BackgroundMiddleware

FILE = os.path.join(tempfile.gettempdir(), "background-processing.txt")


def page(environ, start_response):
    total = 0

    def add_up(*numbers):  # first task: total becomes 1 + 2 + 4 = 7
        nonlocal total
        total += sum(numbers)

    def save():  # second task, runs after the first: writes 7 to the file
        with open(FILE, "w") as fh:
            fh.write(str(total))

    background.add(add_up, 1, 2, 4)
    background.add(save)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [
        f"Current sum value is {total}. Please check file {FILE} in the web server;"
        " final sum value there should be 7.\n".encode()
    ]


application = BackgroundMiddleware(page)
