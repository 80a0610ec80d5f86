"""Where plugin code runs: bubblewrap, resource limits, and a harness that watches from inside.

``runner.sandbox_run`` starts the harness (``harness.py``) on an unpacked plugin with its
virtual environment (``environment.plugin_environment``), traced from outside by strace
(``tracer``) for the behaviour check; the checks in
reviews/checks/behaviour.py and reviews/checks/performance.py read what it reports.

The runner builds the command in ``command``, watches the process in ``supervision``, takes the
kernel's figures in ``measure`` and keeps the run's record in ``records``; the tracer reads
strace's lines in ``strace`` and tells effects from the rest in ``effects``.
"""
