"""The version dossier: one admin page with every piece of evidence about a version, in the
order a reviewer reads it, and the actions each reader may take on it (docs/workflow.md).

``sections`` gathers what the page shows, each section read in a fixed number of queries
whatever the number of findings, controls or threads; ``views`` serves the page and the forms
it posts (triage, assessments, sign-off, threads), each through the service that owns it.
"""
