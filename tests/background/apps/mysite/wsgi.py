import os

from django.core.wsgi import get_wsgi_application

from sendoff.wsgi import BackgroundMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
application = BackgroundMiddleware(get_wsgi_application())
