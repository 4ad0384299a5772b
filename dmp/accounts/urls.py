from django.urls import include, path, re_path

from . import views

urlpatterns = [
    path("login/new-password/", views.replace_temporary_password, name="account_replace_temporary_password"),
    path("activate/<uidb64>/<token>/", views.activate_account, name="account_activate"),
    path("login/no-code/", views.no_code_destination, name="account_no_code_destination"),
    # Not offered: recovery happens at a counter (see views.not_offered).
    re_path(r"^password/reset/", views.not_offered),
    re_path(r"^email/", views.not_offered),
    re_path(r"^confirm-email/", views.not_offered),
    path("signup/", views.not_offered),
    path("", include("allauth.urls")),
]
