from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from . import views
from .accounts.views import admin_login, admin_password_change

# The admin has no login form nor password form of its own: see admin_login.
admin.site.login = admin_login
admin.site.password_change = admin_password_change

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/", include("dmp.accounts.urls")),
    path("patient/", include("portal_patient.urls")),
    path("pro/", include("portal_pro.urls")),
    path("counter/", include("social_workers.urls")),
    path("api/", include("dmp.api.urls")),
    path("fhir/", include("dmp.api.fhir.urls")),
    # The language switch: ours, so a logged-in person's choice is also stored (views.language_set).
    path("i18n/setlang/", views.language_set, name="set_language"),
    path("words/", views.words, name="words"),
    path(settings.ADMIN_URL, admin.site.urls),
]

handler400 = "dmp.views.error_400"
handler403 = "dmp.views.error_403"
handler404 = "dmp.views.error_404"
handler500 = "dmp.views.error_500"
