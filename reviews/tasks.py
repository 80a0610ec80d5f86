"""django-q2 tasks of the review pipeline: thin, by id, safe to run twice."""

import logging

from governance.errors import TransitionRefused
from submissions.models import PluginVersion, VersionStatus

from .checks.engine import check_run_execute, check_runs_rematch_released, check_runs_requeue_stale
from .reports import report_import
from .services import review_start
from .sla import sla_sweep

logger = logging.getLogger(__name__)


def start_review(version_id: int) -> None:
    version = PluginVersion.objects.filter(pk=version_id, status=VersionStatus.SUBMITTED).first()
    if version is None:
        logger.info("Version %s is no longer waiting to start; nothing to do.", version_id)
        return
    try:
        review_start(version=version)
    except TransitionRefused as exc:  # a concurrent run started it first
        logger.info("Version %s: %s", version_id, exc.detail)


def run_check(run_id: int) -> None:
    check_run_execute(run_id=run_id)


def import_report(run_id: int) -> None:
    report_import(run_id=run_id)


def requeue_stale_check_runs() -> int:
    return check_runs_requeue_stale()


def rematch_released_versions(packages: list[str] | None = None) -> int:
    return check_runs_rematch_released(packages=packages)


def sweep_slas() -> dict:
    return sla_sweep()
