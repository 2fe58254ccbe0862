"""Class descriptions: plain YAML files a user can edit or extend.

File layout::

    classes:
      <class key (folder name)>:
        name: <display name>
        aliases: [<other folder names>]
        description: <what the class looks like on the image>
        attributes: {<attribute>: <value in [0, 1]>}   # optional, for zero-shot

Lookup by folder name is case-insensitive and honours aliases, so ``mel`` finds ``MEL``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from zsmed.errors import ConfigError, InputFileError
from zsmed.resources import resources_dir


@dataclass(frozen=True)
class ClassDescription:
    key: str
    name: str
    description: str
    aliases: tuple[str, ...] = ()
    attributes: Mapping[str, float] = field(default_factory=dict)

    def matches(self, label: str) -> bool:
        wanted = label.strip().lower()
        return wanted == self.key.lower() or wanted in (a.lower() for a in self.aliases)


Entry = TypeVar("Entry", bound=ClassDescription)


def shipped_description_files() -> list[Path]:
    return sorted((resources_dir() / "descriptions").glob("*.yaml"))


def _parse(data: Any, source: Path) -> list[ClassDescription]:
    if not isinstance(data, dict) or not isinstance(data.get("classes"), dict):
        raise ConfigError("expected a top-level 'classes:' mapping", path=source)
    out = []
    for key, entry in data["classes"].items():
        if isinstance(entry, str):
            entry = {"description": entry}
        if not isinstance(entry, dict):
            raise ConfigError(f"class '{key}': expected a mapping with a description", path=source)
        _check_types(key, entry, source)
        description = str(entry.get("description") or "").strip()
        attributes = entry.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise ConfigError(f"class '{key}': 'attributes' must be a mapping", path=source)
        try:
            attrs = {str(k): float(v) for k, v in attributes.items()}
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"class '{key}': attribute values must be numbers ({exc})", path=source) from exc
        out.append(
            ClassDescription(
                key=str(key),
                name=str(entry.get("name") or key),
                description=" ".join(description.split()),
                aliases=tuple(str(a) for a in entry.get("aliases") or ()),
                attributes=attrs,
            )
        )
    return out


# A class file is a few kB; one of megabytes is not one (and YAML's cost grows with it).
MAX_YAML_BYTES = 2 << 20
MAX_LABEL_CHARS = 100


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses aliases (``*name``): a few hundred bytes of nested aliases
    (a 'billion laughs') expand to gigabytes once the loaded data is walked."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in zsmed files",
                                              event.start_mark)
        return super().compose_node(parent, index)


def load_yaml_text(text: str) -> Any:
    """Parse YAML the way every zsmed file is parsed: safe types only, no aliases."""
    return yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader subclass: safe types only


def read_yaml(path: str | Path, what: str) -> Any:
    """A user-editable YAML file; ``what`` names it in the one-line error ("descriptions" ...).
    At most 2 MB, safe types only, no aliases."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise InputFileError(f"cannot read {what} ({exc.strerror or exc})", path=path) from exc
    if len(raw) > MAX_YAML_BYTES:
        raise ConfigError(f"{what} file is larger than {MAX_YAML_BYTES >> 20} MB; not a zsmed class file", path=path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} file is not UTF-8 text ({exc.reason} at byte {exc.start})", path=path) from exc
    try:
        return load_yaml_text(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML ({str(exc).splitlines()[0]})", path=path) from exc
    except RecursionError as exc:
        raise ConfigError("not valid YAML (nested too deeply)", path=path) from exc


def _check_types(key: Any, entry: dict[str, Any], source: Path) -> None:
    """Field types of one class entry: the key and name short printable text (they become class
    names in models, reports and on screen), the description text, aliases a list of text."""
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_LABEL_CHARS or not key.isprintable():
        raise ConfigError(f"class key {str(key)[:40]!r} must be printable text of at most {MAX_LABEL_CHARS} "
                          "characters", path=source)
    for field_name in ("name", "description", "parent"):
        value = entry.get(field_name)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"class '{key}': '{field_name}' must be text, not {type(value).__name__}", path=source)
    display = entry.get("name")
    if isinstance(display, str) and (len(display) > MAX_LABEL_CHARS or not display.isprintable()):
        raise ConfigError(f"class '{key}': 'name' must be printable text of at most {MAX_LABEL_CHARS} characters",
                          path=source)
    aliases = entry.get("aliases")
    if aliases is not None and not (isinstance(aliases, list) and all(isinstance(a, str) for a in aliases)):
        raise ConfigError(f"class '{key}': 'aliases' must be a list of names", path=source)
    attributes = entry.get("attributes")
    if isinstance(attributes, dict) and any(isinstance(v, bool) or not isinstance(v, int | float)
                                            for v in attributes.values()):
        raise ConfigError(f"class '{key}': attribute values must be numbers", path=source)


def load_description_file(path: str | Path) -> list[ClassDescription]:
    return _parse(read_yaml(path, "descriptions"), Path(path))


def load_descriptions(paths: Iterable[str | Path] | None = None) -> list[ClassDescription]:
    """All descriptions from the given files, or from every shipped file."""
    files = list(paths) if paths is not None else shipped_description_files()
    return [entry for file in files for entry in load_description_file(file)]


def best_match(label: str, entries: Sequence[Entry]) -> Entry | None:
    """An exact key beats a case-insensitive key, which beats an alias ('mel' vs Derm7pt's 'MEL')."""
    for test in (
        lambda d: d.key == label,
        lambda d: d.key.lower() == label.strip().lower(),
        lambda d: d.matches(label),
    ):
        for entry in entries:
            if test(entry):
                return entry
    return None


TITLE_CHARS = 40  # what fits beside a result bar


def short_title(name: str) -> str:
    """A display name short enough for a result bar: a trailing parenthesis dropped when it is too
    long ("Benign keratosis (seborrheic keratosis, ...)" -> "Benign keratosis")."""
    name = " ".join(name.split())
    if len(name) > TITLE_CHARS and name.endswith(")") and " (" in name:
        name = name[: name.rindex(" (")]
    return name


@functools.lru_cache(maxsize=1)
def _shipped_titles() -> dict[str, str]:
    return {entry.description: short_title(entry.name) for entry in load_descriptions() if entry.description}


def shipped_title(description: str) -> str | None:
    """The display name of the shipped class whose description this is, word for word (a
    description the user left as zsmed proposed it); None for any other text."""
    return _shipped_titles().get(" ".join(str(description).split()))


def descriptions_for(
    labels: Sequence[str], sources: Iterable[str | Path] | None = None, *, required: bool = False
) -> dict[str, ClassDescription]:
    """Description per label; user files (``sources``) win over shipped ones. Missing labels are
    left out unless ``required``, in which case they are a ``ConfigError`` naming them."""
    user = load_descriptions(sources) if sources is not None else []
    shipped = load_descriptions()
    found: dict[str, ClassDescription] = {}
    for label in labels:
        entry = best_match(label, user) or best_match(label, shipped)
        if entry is not None and entry.description:
            found[label] = entry
    missing = [label for label in labels if label not in found]
    if required and missing:
        raise ConfigError(f"no description for class(es): {', '.join(missing)}")
    return found
