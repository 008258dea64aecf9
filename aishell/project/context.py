"""The frozen context every command receives, resolved once from global options."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from aishell.paths import Paths, absolute, default_paths, working_dir

if TYPE_CHECKING:
    from aishell.engine import Engine
from aishell.project import config


@dataclass(frozen=True)
class Context:
    project: Path
    paths: Paths
    verbose: bool = False
    quiet: bool = False
    color: bool = True
    json: bool = False

    @classmethod
    def create(cls, project: str | None, *, verbose: bool = False, quiet: bool = False,
               no_color: bool = False, json: bool = False) -> Context:
        root = absolute(project) if project else config.find_project(working_dir())
        color = not no_color and not os.environ.get("NO_COLOR")
        return cls(project=root, paths=default_paths(), verbose=verbose, quiet=quiet,
                   color=color, json=json)

    @cached_property
    def config(self) -> config.Config:
        return config.load(self.project, self.paths.global_config,
                           legacy_global=self.paths.legacy_global)

    @cached_property
    def engine(self) -> Engine:
        from aishell.engine import Engine  # noqa: PLC0415 - commands that need no engine skip it

        settings = self.config.table("settings")
        return Engine(cli=settings.get("engine"))
