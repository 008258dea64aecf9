"""The project: its directory, the files the user wrote and the context a command runs in.

Owns reading ``aishell.toml`` and the global config strictly (:mod:`.source`,
:mod:`.config`), the original tool's ``config.yaml`` (:mod:`.compat`, :mod:`.migrate`), and
the frozen :class:`~aishell.project.context.Context` every command receives.

May import: the core (``aishell.errors``, ``paths``, …) and ``aishell.engine`` (the context
holds the engine object the stages above are handed).
"""
