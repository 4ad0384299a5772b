from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DmpConfig(AppConfig):
    name = "dmp"
    verbose_name = _("Shared medical record")

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
        from .accounts import signals  # noqa: F401 - connects the receivers
