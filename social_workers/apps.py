from django.apps import AppConfig


class SocialWorkersConfig(AppConfig):
    name = "social_workers"
