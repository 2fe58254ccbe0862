"""zsmed.zeroshot."""
