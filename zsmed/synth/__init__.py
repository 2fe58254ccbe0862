"""zsmed.synth."""
