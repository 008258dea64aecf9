"""Verb-named command implementations; each returns data or an exit code."""
