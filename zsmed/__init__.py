"""zsmed: few-shot and zero-shot medical image classifiers, built on a workstation, run offline."""

__version__ = "0.1.0"
