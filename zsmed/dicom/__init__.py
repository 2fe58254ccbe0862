"""DICOM reading: header-only scanning into a patient/study/series index, safe pixel decoding,
and the display pipeline as small pure functions over arrays.

Fast path (trusted files, training): ``load_model_image``. Untrusted files: ``SafeDecoder`` /
``safe_model_image`` decode in a worker process with a time limit. Folders, CDs and file lists:
``scan_job`` / ``scan`` build a ``ScanIndex``.
"""

from zsmed.dicom.decode import load_model_image, model_image_from_dataset, open_dataset, read_dataset, stored_pixels

__all__ = ["load_model_image", "model_image_from_dataset", "open_dataset", "read_dataset", "stored_pixels"]
