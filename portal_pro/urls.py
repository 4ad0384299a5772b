from .views import documents, home, record, synthesis, tokens

app_name = "portal_pro"
urlpatterns = [
    *home.urlpatterns,
    *record.urlpatterns,
    *documents.urlpatterns,
    *synthesis.urlpatterns,
    *tokens.urlpatterns,
]
