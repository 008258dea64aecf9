"""Stage 2, store: what the lock needs on this machine, built once and shared.

Owns the download cache, the env plan, env volumes and their completion markers, the
tree digest and its tar stream, the foundation and extension images, the host index
(projects, generations, pins), the store and per-env mutexes, ``sync``, ``verify``,
``store ls``/``pin`` and ``gc``.

May import: the core, ``aishell.engine``, ``aishell.project`` and ``aishell.lock``.
"""
