"""The sans-I/O core: pure state and decisions, time passed in as ``now``.

Connection states and their transitions, backoff, request correlation, routing, subscriptions
and sequence tracking — each unit-tested without an event loop. See the modules for the API.
"""

__all__: list[str] = []
