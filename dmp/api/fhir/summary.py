"""FHIR summary endpoints (see dmp/api/fhir/__init__.py for the conventions):
`GET /fhir/Patient/{id}/$summary`, the synthesis as an International Patient Summary.

The policy: the summary is a read of the synthesis (`Action.VIEW_SYNTHESIS` through
`synthesis_for`, audited as such); a professional who may not read the synthesis gets the
404 a missing patient gets. The allergies the patient declared, the vaccinations and the
advance directives are personal data (`Action.VIEW_PERSONAL_DATA`, audited); the medicines
dispensed in the last 24 months come in when `Action.VIEW_REIMBURSEMENTS` allows them.
"""

from __future__ import annotations

from django.http import Http404
from django.urls import re_path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema

from ...access_log import authorise_read
from ...models import Record
from ...policy import Action, Actor
from ...selectors.summary import summary_for_api
from .base import FhirView, fhir_response
from .clinical import COMMON_ERRORS


class PatientSummaryView(FhirView):
    @extend_schema(
        operation_id="fhir_patient_summary",
        summary="The patient's International Patient Summary ($summary)",
        description="A Bundle of type `document`: a Composition (LOINC 60591-5) with the problems, medications, "
                    "allergies, immunizations and advance-directives sections, and every resource it references.",
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="The Patient id.")],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="Bundle of type document."),
                   **COMMON_ERRORS},
        tags=["FHIR summary"],
    )
    def get(self, request, pk: str):
        actor = Actor.from_request(request)
        record = Record.objects.filter(pk=int(pk)).first()
        if record is None:
            authorise_read(actor, Action.VIEW_SYNTHESIS, None, object_id=f"record:{pk}"[:40])
            raise Http404
        # The same content as the patient's PDF (dmp/selectors/summary.py), asked under the API's rules.
        bundle = summary_for_api(actor, record).bundle()
        return fhir_response(bundle)


urlpatterns = [
    re_path(r"^Patient/(?P<pk>[0-9]{1,18})/\$summary$", PatientSummaryView.as_view(), name="patient-summary"),
]
