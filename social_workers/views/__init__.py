"""The counter agents' and social workers' portal (DOMAIN.md §1, §3 counter onboarding): one
module per screen; each lists its own `urlpatterns`, joined in social_workers/urls.py. Agents
create records, hand over credentials and deposit papers; they never read medical content."""
