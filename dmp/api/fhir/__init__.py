"""The practice-software API: HL7 FHIR R4 over Django REST framework, under /fhir/ (DOMAIN.md §7).

Conventions, shared by every resource module:
- JSON is `application/fhir+json` (plain `application/json` accepted on input); every answer
  is built with the `fhir.resources` R4B models from dmp/fhir.py, so it validates as it is built.
- Resource ids are the ids dmp/fhir.py gives: Patient = record pk, DocumentReference and
  Binary = document pk, Practitioner = professional pk, Organization = organisation pk,
  Condition = problem pk, Immunization = vaccination pk, AllergyIntolerance =
  "synthesis-<pk>-<n>" / "declared-<pk>".
- Authentication: API tokens (Bearer) bound to a professional, or the session; permission: a
  professional with a second factor (dmp/api/permissions.py). Every read and write goes through
  the same selectors and services as the portals, so the same policy decides and the same audit
  log records; what is refused is 404 exactly like what does not exist.
- Errors are OperationOutcome resources (base.fhir_exception_handler); every path no route
  serves is a 404 OperationOutcome (base.UnknownPath, the last route of urls.py); JSON only.
- Searches declare what they accept (base.SearchSpec) and read it with base.search_request:
  paging, `_summary=count`, `_sort`, `_include`, strict or lenient handling; the
  CapabilityStatement (metadata.py) is written from those declarations.
- Each API token has its own hourly limit (dmp/api/throttling.py).
- Each module lists its own `urlpatterns`; urls.py joins them.
"""
