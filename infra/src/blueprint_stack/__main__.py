"""`python -m blueprint_stack ...`."""

from blueprint_stack.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
