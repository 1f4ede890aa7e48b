"""Bounds for numbers that come from clients.

Every integer a client sends is bounded by the column it is compared with or stored in, so a
value beyond PostgreSQL's `integer` answers a precise 422 from validation instead of failing in
the database. A test walks every service's OpenAPI document to hold every integer to a maximum.
"""

from __future__ import annotations

INT4_MAX = 2**31 - 1  # PostgreSQL integer
INT2_MAX = 2**15 - 1  # PostgreSQL smallint
