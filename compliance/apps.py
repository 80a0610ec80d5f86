from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"

    def ready(self) -> None:
        # Imported here, not at the top: models may only be imported once the registry is ready.
        from governance import hooks

        from .services import assessments_open_for_stage

        hooks.connect(hooks.STAGE_STARTED, assessments_open_for_stage)
