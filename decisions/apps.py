from django.apps import AppConfig


class DecisionsConfig(AppConfig):
    """The top layer: it fills the hooks through which the layers below let it react."""

    default = True
    name = "decisions"
    verbose_name = "Decisions"

    def ready(self) -> None:
        from . import hooks

        hooks.connect()
