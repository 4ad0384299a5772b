"""The patient's portal (and a legal representative's, acting for the patient), one module
per screen of DOMAIN.md §3: record (home), documents, information, manage, history, export.
Each module lists its own `urlpatterns`; portal_patient/urls.py joins them."""
