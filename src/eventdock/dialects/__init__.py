"""The front doors: one module per wire dialect.

Each parses its wire format, authorises, maps to the core types and renders
its own errors (``render_error``). None of them touches the database: they
hand events to the pipeline and read through the store's query functions.
"""
