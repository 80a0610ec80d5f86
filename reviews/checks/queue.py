"""Queueing checks: apart from the engine that runs them, because the pipeline queues them
when a stage starts and the engine, when a run ends, may pass the stage and so advance the
pipeline (reviews/checks/engine.py)."""

from django.db import transaction
from django_q.tasks import async_task

from reviews.models import CheckRun, RunOrigin, StageReview

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


# Warden's own checks run; a posted report too big to import in its request is imported.
TASKS: dict[str, str] = {
    RunOrigin.INTERNAL: "reviews.tasks.run_check",
    RunOrigin.EXTERNAL: "reviews.tasks.import_report",
}


def enqueue_after_commit(run: CheckRun) -> None:
    transaction.on_commit(lambda: enqueue(run))


def enqueue(run: CheckRun, *, retry: bool = False) -> None:
    async_task(TASKS[run.origin], run.pk, task_name=f"check-{run.pk}{'-retry' if retry else ''}")
