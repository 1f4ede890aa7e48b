"""`blueprint`: the Blueprint platform from a terminal, for people (tables) and scripts (`--json`,
stable exit codes: 0 done, 1 refused by the API or unreachable, 2 wrong usage)."""
