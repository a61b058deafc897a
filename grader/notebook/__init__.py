"""A submitted notebook, read: its shape, its cells, which section each one is."""
