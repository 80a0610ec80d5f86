"""The reviews admin, by sub-domain. compliance/admin.py extends the stage review's page."""

from . import checks, collaboration, people, performance, responses, threat_models  # noqa: F401 - registers them
from .stages import REVIEW, StageReviewAdmin, render_performance

__all__ = ["REVIEW", "StageReviewAdmin", "render_performance"]
