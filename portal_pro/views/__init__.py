"""The health professionals' portal, one module per screen of DOMAIN.md §3 (clinician):
home (finding and opening a record), record (the one-screen patient view and its PDF),
documents (list, search, adding in two actions), synthesis (the médecin traitant's), history
(the record's access history for the médecin traitant, and blocking at the patient's request),
tokens (API credentials). Each module lists its own `urlpatterns`; portal_pro/urls.py joins them."""
