from . import audit, clinical, documents, metadata, patient, summary

app_name = "fhir"
urlpatterns = [
    *metadata.urlpatterns,
    *patient.urlpatterns,
    *documents.urlpatterns,
    *clinical.urlpatterns,
    *audit.urlpatterns,
    *summary.urlpatterns,
]
