"""The health professionals' portal, one module per screen of DOMAIN.md §3 (clinician):
home (finding and opening a record), record (the one-screen patient view and its PDF),
documents (list, search, adding in two actions), synthesis (the médecin traitant's), tokens
(API credentials). Each module lists its own `urlpatterns`; portal_pro/urls.py joins them."""
