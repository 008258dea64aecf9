"""Security layers a launch passes through: detection, Gitleaks, argument validation.

Owns the sensitive-file walk, the Gitleaks command line and scan records, validation of
dangerous engine arguments and mounts, and :func:`~aishell.security.preflight.preflight`.

May import: the core and ``aishell.project``. Never ``aishell.engine``.
"""
