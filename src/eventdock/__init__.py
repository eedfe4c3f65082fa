"""eventdock: a self-hosted event platform.

Four wire dialects (``eventdock.dialects``) parse requests and render their own
errors; one core (``eventdock.core``) normalises, governs and resolves events;
one store (``eventdock.store``) persists them through a group-commit writer.
"""

__version__ = "0.1.0"
