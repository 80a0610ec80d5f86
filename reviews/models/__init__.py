"""The reviews models, by sub-domain; everything is importable from ``reviews.models``."""

from .advisories import Advisory, AdvisoryPackage
from .checks import (
    RUN_ACTIVE,
    RUN_DONE,
    SEVERITY_RANK,
    CheckRun,
    Finding,
    FindingTriage,
    RunOrigin,
    RunStatus,
    Severity,
    Triage,
    report_path,
)
from .collaboration import Annotation, AnnotationKind, Feedback
from .people import ReviewerQualification, SlaBreach, SlaSignal, TrainingRecord
from .performance import THREADS, PerformanceBudget, PerformanceMetric
from .responses import RESPONSE_STAGE_KINDS, CannedResponse, UsedResponse
from .stages import CLEARED, OPEN, R, ReviewStatus, StageReview
from .threat_models import (
    ElementKind,
    Rating,
    Source,
    Stride,
    Threat,
    ThreatModel,
    ThreatModelElement,
    ThreatModelStatus,
    ThreatStatus,
)

__all__ = [
    "CLEARED",
    "OPEN",
    "RESPONSE_STAGE_KINDS",
    "RUN_ACTIVE",
    "RUN_DONE",
    "SEVERITY_RANK",
    "THREADS",
    "Advisory",
    "AdvisoryPackage",
    "Annotation",
    "AnnotationKind",
    "CannedResponse",
    "CheckRun",
    "ElementKind",
    "Feedback",
    "Finding",
    "FindingTriage",
    "PerformanceBudget",
    "PerformanceMetric",
    "R",
    "Rating",
    "ReviewStatus",
    "ReviewerQualification",
    "RunOrigin",
    "RunStatus",
    "Severity",
    "SlaBreach",
    "SlaSignal",
    "Source",
    "StageReview",
    "Stride",
    "Threat",
    "ThreatModel",
    "ThreatModelElement",
    "ThreatModelStatus",
    "ThreatStatus",
    "TrainingRecord",
    "Triage",
    "UsedResponse",
    "report_path",
]
