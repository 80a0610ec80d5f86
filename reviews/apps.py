from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"

    def ready(self) -> None:
        # Imported here, not at the top: models may only be imported once the registry is ready.
        from governance import hooks

        from .checks import behaviour, dependencies, eligibility, performance, security  # noqa: F401 - registers them
        from .collaboration import answers_add
        from .pipeline import close_round_on_withdrawal
        from .selectors import versions_reviewed_by_groups_of

        hooks.connect(hooks.VERSION_ANSWERED, answers_add)
        hooks.connect(hooks.VERSION_WITHDRAWN, close_round_on_withdrawal)
        hooks.connect(hooks.VERSIONS_VISIBLE, versions_reviewed_by_groups_of)
