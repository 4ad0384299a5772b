from django.urls import re_path

from . import audit, clinical, documents, metadata, mhd, patient, practitioner, results, summary
from .base import UnknownPath

app_name = "fhir"
urlpatterns = [
    *metadata.urlpatterns,
    *patient.urlpatterns,
    *documents.urlpatterns,
    *clinical.urlpatterns,
    *results.urlpatterns,
    *audit.urlpatterns,
    *summary.urlpatterns,
    *practitioner.urlpatterns,
    *mhd.urlpatterns,  # POST to the base: transaction and batch Bundles (IHE MHD ITI-65)
    # Last: every other path under /fhir/ is a FHIR 404, never Django's HTML page.
    re_path(r"^.*$", UnknownPath.as_view(), name="unknown"),
]
