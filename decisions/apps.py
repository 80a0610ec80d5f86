from django.apps import AppConfig


class DecisionsConfig(AppConfig):
    """The top layer: it fills the hooks through which the layers below let it react."""

    default = True
    name = "decisions"
    verbose_name = "Decisions"

    def ready(self) -> None:
        # Imported here, not at the top: models may only be imported once the registry is ready.
        from . import hooks

        hooks.connect()
