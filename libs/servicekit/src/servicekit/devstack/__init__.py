"""Private PostgreSQL clusters and Redis servers for the local stack and the test suite."""

from servicekit.devstack.ports import PortInUse, ensure_port_free, free_port
from servicekit.devstack.postgres import PostgresCluster
from servicekit.devstack.redis import RedisServer

__all__ = ["PortInUse", "PostgresCluster", "RedisServer", "ensure_port_free", "free_port"]
