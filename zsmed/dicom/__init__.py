"""DICOM reading: header-only scanning into a patient/study/series index, safe pixel decoding,
and the display pipeline as small pure functions over arrays."""

from zsmed.dicom.pixels import load_model_image

__all__ = ["load_model_image"]
