"""`python -m blueprint_cli`: the same as the `blueprint` command."""

from blueprint_cli.main import main

main()
