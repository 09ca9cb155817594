from django.urls import path

from . import views

urlpatterns = [
    path("orders/<int:order_id>", views.place_order),
    path("async/<path:path>", views.async_endpoint),
    path("<path:path>", views.endpoint),
]
