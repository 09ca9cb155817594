"""Django under ASGI with ``on_error="continue"``: later tasks run after a failure."""

import os

from django.core.asgi import get_asgi_application

from sendoff.asgi import BackgroundMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
application = BackgroundMiddleware(get_asgi_application(), on_error="continue")
