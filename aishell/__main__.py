from aishell.cli import entry

entry()
