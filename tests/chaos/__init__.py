"""Chaos run: many projects walked through the gateway while processes are killed and the
databases restarted, then a checker proving from the databases that nothing was lost, doubled or
left inconsistent (docs/reliability.md)."""
