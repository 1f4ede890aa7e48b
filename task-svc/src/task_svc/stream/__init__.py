"""The live event stream of a project: Server-Sent Events fed by the Redis event streams."""
