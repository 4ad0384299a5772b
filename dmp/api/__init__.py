"""The API for practice software (DOMAIN.md §6): token or session authentication, and only
professionals with a second factor get past the door. The FHIR API will live here too."""
