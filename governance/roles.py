"""The roles of the portal, as Django groups.

The groups and their model permissions are created by data migrations (the first is
governance/migrations/0002_roles.py; later ones add what later features need). Object
permissions, such as an organisation's plugins or a stage's reviews, are granted by the
services that create those objects.
"""

AUTHORS = "Plugin authors"
SECURITY_REVIEWERS = "Security reviewers"
PERFORMANCE_REVIEWERS = "Performance reviewers"
COMPLIANCE_OFFICERS = "Compliance officers"
APPROVAL_BOARD = "Approval board"
PLATFORM_ADMINS = "Platform admins"

# The groups that may own or escalate a stage: reviewing roles, never an organisation's group
# (``org:<slug>``) nor the authors, who never review.
STAGE_ROLES = (SECURITY_REVIEWERS, PERFORMANCE_REVIEWERS, COMPLIANCE_OFFICERS, APPROVAL_BOARD, PLATFORM_ADMINS)
