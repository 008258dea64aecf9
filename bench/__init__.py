"""aishell's benchmark suite: every figure is a ratio against a baseline from the same run."""
