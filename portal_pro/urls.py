from .views import documents, history, home, record, results, synthesis, tokens

app_name = "portal_pro"
urlpatterns = [
    *home.urlpatterns,
    *record.urlpatterns,
    *documents.urlpatterns,
    *synthesis.urlpatterns,
    *results.urlpatterns,
    *history.urlpatterns,
    *tokens.urlpatterns,
]
