"""Stage 3, run: a throw-away sandbox on the env the store holds.

Owns the ``[run]`` table and its merge with the host, the host identity and git dirs, the
container request of a sandbox, the launch pipeline (``run``, ``exec``, ``shell``,
``--detach``, ``attach``, ``ps``, ``stop``), ``aishell gitleaks`` and the doctor.

May import: every stage below it (``lock``, ``store``, ``security``), ``project``, the
engine and the core.
"""
