"""Reading an SR's content tree back in tests."""

from __future__ import annotations

from typing import Any


def content_items(ds: Any) -> list[Any]:
    """Every content item of an SR tree, depth first."""
    out = []
    for item in ds.get("ContentSequence", []):
        out.append(item)
        out.extend(content_items(item))
    return out


def text_values(ds: Any) -> list[str]:
    """Every TEXT content item's value, depth first."""
    return [str(item.TextValue) for item in content_items(ds) if item.ValueType == "TEXT"]
