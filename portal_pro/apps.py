from django.apps import AppConfig


class PortalProConfig(AppConfig):
    name = "portal_pro"
