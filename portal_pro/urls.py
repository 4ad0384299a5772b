from .views import documents, history, home, record, synthesis, tokens

app_name = "portal_pro"
urlpatterns = [
    *home.urlpatterns,
    *record.urlpatterns,
    *documents.urlpatterns,
    *synthesis.urlpatterns,
    *history.urlpatterns,
    *tokens.urlpatterns,
]
