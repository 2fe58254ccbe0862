"""zsmed.align."""
