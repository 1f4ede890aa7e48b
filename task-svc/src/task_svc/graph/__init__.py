"""Pure graph algorithms of task-svc (no I/O): bootstrap planning, critical path, Mermaid."""
