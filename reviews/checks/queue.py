"""Queueing checks: apart from the engine that runs them, because the pipeline queues them
when a stage starts and the engine, when a run ends, may pass the stage and so advance the
pipeline (reviews/checks/engine.py)."""

from django.db import transaction
from django_q.tasks import async_task

from reviews.models import CheckRun, StageReview

from . import REGISTRY


def queue_stage_checks(*, review: StageReview) -> list[CheckRun]:
    runs = []
    for key in review.stage.checks:
        spec = REGISTRY.get(key)
        run = CheckRun.objects.create(
            version_id=review.version_id,
            revision=review.version.revision,
            stage_review=review,
            check_key=key,
            tool=spec.tool if spec else "",
        )
        enqueue_after_commit(run)
        runs.append(run)
    return runs


def enqueue_after_commit(run: CheckRun) -> None:
    run_id = run.pk
    transaction.on_commit(lambda: async_task("reviews.tasks.run_check", run_id, task_name=f"check-{run_id}"))
