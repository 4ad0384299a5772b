from django.apps import AppConfig


class PortalPatientConfig(AppConfig):
    name = "portal_patient"
