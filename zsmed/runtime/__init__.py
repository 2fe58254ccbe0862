"""zsmed.runtime."""
