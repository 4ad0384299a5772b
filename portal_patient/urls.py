from .views import documents, export, history, information, manage, record, results

app_name = "portal_patient"
urlpatterns = [
    *record.urlpatterns,
    *documents.urlpatterns,
    *results.urlpatterns,
    *information.urlpatterns,
    *manage.urlpatterns,
    *history.urlpatterns,
    *export.urlpatterns,
]
