from . import audit, clinical, documents, metadata, mhd, patient, summary

app_name = "fhir"
urlpatterns = [
    *metadata.urlpatterns,
    *patient.urlpatterns,
    *documents.urlpatterns,
    *clinical.urlpatterns,
    *audit.urlpatterns,
    *summary.urlpatterns,
    *mhd.urlpatterns,  # POST to the base: transaction and batch Bundles (IHE MHD ITI-65)
]
