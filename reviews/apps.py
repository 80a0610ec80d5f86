from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"

    def ready(self) -> None:
        from .checks import behaviour, dependencies, eligibility, performance, security  # noqa: F401 - registers them
