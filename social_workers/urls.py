from .views import dashboard, onboarding, reset

app_name = "social_workers"
urlpatterns = [
    *reset.urlpatterns,
    *onboarding.urlpatterns,
    *dashboard.urlpatterns,
]
