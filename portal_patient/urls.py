from django.urls import path

from . import views

app_name = "portal_patient"
urlpatterns = [
    path("", views.home, name="home"),
    path("records/<int:pk>/", views.record, name="record"),
    path("documents/<int:pk>/file/", views.document_file, name="document_file"),
]
