"""zsmed.bundle."""
