from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"

    def ready(self) -> None:
        from .checks import dependencies, eligibility, security  # noqa: F401 - registers the checks
