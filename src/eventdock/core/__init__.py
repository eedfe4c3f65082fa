"""The hallway: pipeline and domain rules, free of HTTP and SQL."""
