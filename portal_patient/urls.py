from .views import documents, export, history, information, manage, record

app_name = "portal_patient"
urlpatterns = [
    *record.urlpatterns,
    *documents.urlpatterns,
    *information.urlpatterns,
    *manage.urlpatterns,
    *history.urlpatterns,
    *export.urlpatterns,
]
