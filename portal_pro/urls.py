from django.urls import path

from . import views

app_name = "portal_pro"
urlpatterns = [
    path("", views.home, name="home"),
    path("records/<int:pk>/", views.record, name="record"),
    path("documents/<int:pk>/file/", views.document_file, name="document_file"),
    path("api-tokens/", views.api_tokens, name="api_tokens"),
    path("api-tokens/new/", views.api_token_new, name="api_token_new"),
    path("api-tokens/<int:pk>/revoke/", views.api_token_revoke, name="api_token_revoke"),
]
