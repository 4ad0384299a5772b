from django.urls import path

from . import views

app_name = "social_workers"
urlpatterns = [
    path("", views.home, name="home"),
    path("credentials/reset/", views.credentials_reset, name="credentials_reset"),
]
