"""The local stack runner: the whole platform on one machine, without containers.

    python -m blueprint_stack run        # PostgreSQL, Redis, the services, the gateway
    python -m blueprint_stack token --roles planner,operator

Tests drive the same code: `Stack(StackConfig.for_tests(...)).start()` ... `.stop()`.
"""

from blueprint_stack.config import StackConfig
from blueprint_stack.stack import Stack, StackError

__all__ = ["Stack", "StackConfig", "StackError"]
