"""Stage 1, lock: what the manifest asks for, resolved into ``aishell.lock``.

Owns the manifest model and its round-trip edits, npm semver, the registry client, the
resolver (npm computes the closure, in a container the engine object runs), the Node.js
runtime pin, the lockfile format and env ids, freshness, the harness catalog and the
pure foundation spec (its inputs are lock inputs).

May import: the core and ``aishell.project``. Never ``aishell.engine``: the resolver is
handed an engine object and types it with a protocol of its own.
"""
