import os

from django.core.asgi import get_asgi_application

from sendoff.asgi import BackgroundMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
application = BackgroundMiddleware(get_asgi_application())
