"""Class-definition files for zero-shot learning: per class a description and/or named attributes.

Same YAML layout as ``resources/descriptions`` (parsed by ``zsmed.descriptions``), plus three
optional fields this module reads:

    attribute_names: [pigment_network_typical, ...]   # the vocabulary; any other name is an error
    basis_column: diagnosis                           # metadata.csv column with finer seen labels
    classes:
      NEV: {name: ..., description: ..., attributes: {...}}
      clark nevus: {parent: NEV, description: ..., attributes: {...}}   # a finer basis class

    image_attributes:                                 # optional: per-image annotations in metadata.csv
      pigment_network_atypical: {column: pigment_network, values: [atypical]}
    image_attribute_predictor: derm7pt_7point_predictor.npz   # optional, instead: predicted ones

Finer classes (``parent:``) are never predicted; they only enlarge the seen basis that unseen
prototypes are synthesised from (a data set with 3 seen groups gives a 3-vector basis, its
~13 seen diagnoses a far richer one). An attribute a class does not list counts as 0 (absent).
``image_attributes`` says how to read each attribute off a training image's own ``metadata.csv``
row (1 when the column holds one of the values): the finest seen basis there is, one row per
annotated seen image (Derm7pt labels the 7-point criteria of every case). Where the data carry no
such annotations, ``image_attribute_predictor`` (a file beside the class file, made by
``scripts/make_attribute_predictor.py``) predicts them from each seen image's features
(``zsmed.zeroshot.attribute_predictor``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zsmed.descriptions import ClassDescription, _parse, best_match, read_yaml
from zsmed.errors import ConfigError
from zsmed.zeroshot.attribute_predictor import AttributePredictor, load_attribute_predictor

SEMANTIC_MODES = ("text", "attributes", "both")
# What the CLI and the library use unless told otherwise: all the class file gives (see resolve_semantics).
AUTO_SEMANTICS = "auto"


@dataclass(frozen=True)
class ClassDefinition(ClassDescription):
    """A described class that may sit under a seen class (``parent``: a finer basis class)."""

    parent: str | None = None

    @property
    def text(self) -> str:
        """What the text encoder reads: the display name then the description."""
        return f"{self.name}. {self.description}" if self.description else self.name


@dataclass(frozen=True)
class ImageAttribute:
    """How one attribute is read from an image's metadata row: ``column`` holds one of ``values``."""

    name: str
    column: str
    values: frozenset[str]


@dataclass
class ClassDefinitions:
    classes: list[ClassDefinition]
    attribute_names: list[str]
    basis_column: str | None = None
    source: Path | None = None
    image_attributes: list[ImageAttribute] = field(default_factory=list)
    attribute_predictor: Path | None = None

    def load_attribute_predictor(self) -> AttributePredictor | None:
        """The file's attribute predictor (None when it names none); its attribute names must be
        the file's own."""
        if self.attribute_predictor is None:
            return None
        predictor = load_attribute_predictor(self.attribute_predictor)
        if predictor.names != self.attribute_names:
            raise ConfigError(f"the attribute predictor {self.attribute_predictor.name} predicts other attributes "
                              f"than the file's attribute_names", path=self.source)
        return predictor

    def image_attribute_matrix(self, metas: Sequence[Mapping[str, str]]) -> tuple[np.ndarray, np.ndarray]:
        """(n, k) 0/1 attributes read from each image's metadata row (columns in ``attribute_names``
        order) and a bool mask of the rows that carry every needed column; unannotated rows are 0."""
        if not self.image_attributes:
            raise ConfigError("the class-definition file has no 'image_attributes' section", path=self.source)
        by_name = {spec.name: spec for spec in self.image_attributes}
        columns = sorted({spec.column for spec in self.image_attributes})
        matrix = np.zeros((len(metas), len(self.attribute_names)))
        annotated = np.array([all(str(meta.get(col) or "").strip() for col in columns) for meta in metas], dtype=bool)
        for j, name in enumerate(self.attribute_names):
            spec = by_name[name]
            matrix[:, j] = [float(str(meta.get(spec.column) or "").strip().lower() in spec.values) for meta in metas]
        matrix[~annotated] = 0.0
        return matrix, annotated

    # -- lookup ---------------------------------------------------------------------------------
    def find(self, label: str) -> ClassDefinition | None:
        return best_match(label, self.classes)

    def get(self, label: str) -> ClassDefinition:
        entry = self.find(label)
        if entry is None:
            raise ConfigError(f"class '{label}' is not defined in the class-definition file", path=self.source)
        return entry

    def children(self, parent_key: str) -> list[ClassDefinition]:
        return [c for c in self.classes if c.parent is not None and c.parent == parent_key]

    # -- semantic vectors -----------------------------------------------------------------------
    def attribute_vector(self, label: str) -> np.ndarray:
        entry = self.get(label)
        if not entry.attributes:
            raise ConfigError(f"class '{label}' has no attributes (needed for attribute semantics)", path=self.source)
        return np.array([entry.attributes.get(name, 0.0) for name in self.attribute_names], dtype=np.float64)

    def resolve_semantics(self, labels: Sequence[str], mode: str) -> str:
        """``mode`` itself, or for ``auto`` everything the file gives each of ``labels``: ``both`` when
        every one has a description and attributes, else the part every one has. A clinician who
        wrote descriptions and 7-point criteria expects both to be used without naming a mode."""
        if mode != AUTO_SEMANTICS:
            return mode
        labels = list(dict.fromkeys(labels))
        self._require_defined(labels)
        no_text = [label for label in labels if not self.get(label).description]
        no_attributes = [label for label in labels if not self.get(label).attributes]
        if not no_text:
            return "text" if no_attributes else "both"
        if not no_attributes:
            return "attributes"
        raise ConfigError(f"no kind of semantics that every class has: without a description: {', '.join(no_text)}; "
                          f"without attributes: {', '.join(no_attributes)}", path=self.source)

    def _require_defined(self, labels: Sequence[str]) -> None:
        undefined = [label for label in labels if self.find(label) is None]
        if undefined:
            raise ConfigError(f"class(es) not defined in the class-definition file: {', '.join(undefined)}",
                              path=self.source)

    def require(self, labels: Sequence[str], mode: str) -> None:
        """Every label is defined and has what ``mode`` needs, else one error naming them all."""
        if mode not in SEMANTIC_MODES:
            raise ConfigError(f"semantics must be one of {', '.join(SEMANTIC_MODES)}, not '{mode}'")
        labels = list(dict.fromkeys(labels))  # a class is named once however many roles it has
        self._require_defined(labels)
        if mode in ("text", "both"):
            missing = [label for label in labels if not self.get(label).description]
            if missing:
                raise ConfigError(f"class(es) without a description: {', '.join(missing)}", path=self.source)
        if mode in ("attributes", "both"):
            missing = [label for label in labels if not self.get(label).attributes]
            if missing:
                raise ConfigError(f"class(es) without attributes: {', '.join(missing)}", path=self.source)


def _parse_definitions(data: Any, source: Path | None) -> ClassDefinitions:
    where = source if source is not None else Path("<class definitions>")
    parsed: list[ClassDescription] = _parse(data, where)
    raw = data["classes"]
    vocabulary = data.get("attribute_names")
    if vocabulary is not None and (not isinstance(vocabulary, list) or not all(isinstance(v, str) for v in vocabulary)):
        raise ConfigError("'attribute_names' must be a list of names", path=source)
    definitions = []
    for entry in parsed:
        raw_entry = raw[entry.key] if isinstance(raw[entry.key], dict) else {}
        if not entry.description and not entry.attributes:
            raise ConfigError(f"class '{entry.key}' has neither a description nor attributes", path=source)
        parent = raw_entry.get("parent")
        definitions.append(
            ClassDefinition(
                key=entry.key,
                name=entry.name,
                description=entry.description,
                aliases=entry.aliases,
                attributes=dict(entry.attributes),
                parent=str(parent) if parent is not None else None,
            )
        )
    used = sorted({name for d in definitions for name in d.attributes})
    if vocabulary is None:
        names = used
    else:
        names = list(vocabulary)
        for d in definitions:
            unknown = sorted(set(d.attributes) - set(names))
            if unknown:
                raise ConfigError(
                    f"class '{d.key}': unknown attribute name(s) {', '.join(unknown)} "
                    f"(not in attribute_names)", path=source)
    for d in definitions:
        bad = {k: v for k, v in d.attributes.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise ConfigError(f"class '{d.key}': attribute values must lie in [0, 1]: {bad}", path=source)
        if d.parent is not None and not any(p.key == d.parent for p in definitions):
            raise ConfigError(f"class '{d.key}': parent '{d.parent}' is not defined", path=source)
    basis_column = data.get("basis_column")
    image_attributes = _parse_image_attributes(data.get("image_attributes"), names, source)
    predictor = data.get("image_attribute_predictor")
    predictor_path = None
    if predictor is not None:
        if image_attributes:
            raise ConfigError("give either image_attributes (annotations) or image_attribute_predictor, not both",
                              path=source)
        name = str(predictor)
        if Path(name).name != name or name in (".", ".."):  # a file beside the class file, never a path
            raise ConfigError(f"image_attribute_predictor must name a file beside the class file, not {name!r}",
                              path=source)
        predictor_path = (source.parent if source is not None else Path.cwd()) / name
        if not predictor_path.is_file():
            raise ConfigError(f"image_attribute_predictor: file not found: {predictor_path}", path=source)
    return ClassDefinitions(definitions, names, str(basis_column) if basis_column else None, source,
                            image_attributes, predictor_path)


def _parse_image_attributes(raw: Any, names: Sequence[str], source: Path | None) -> list[ImageAttribute]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise ConfigError("'image_attributes' must map attribute names to {column, values}", path=source)
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise ConfigError(f"image_attributes: unknown attribute name(s) {', '.join(unknown)} (not in attribute_names)",
                          path=source)
    missing = [name for name in names if name not in raw]
    if missing:
        raise ConfigError(f"image_attributes must say how to read every attribute; missing: {', '.join(missing)}",
                          path=source)
    out = []
    for name in names:
        spec = raw[name]
        values = spec.get("values") if isinstance(spec, dict) else None
        if (not isinstance(spec, dict) or not isinstance(spec.get("column"), str) or not isinstance(values, list)
                or not values):
            raise ConfigError(f"image_attributes: '{name}' needs a 'column' and a non-empty list of 'values'",
                              path=source)
        out.append(ImageAttribute(name, spec["column"], frozenset(str(v).strip().lower() for v in values)))
    return out


def load_class_definitions(path: str | Path) -> ClassDefinitions:
    return _parse_definitions(read_yaml(path, "class definitions"), Path(path))


def class_definitions_from_dict(data: dict[str, Any]) -> ClassDefinitions:
    return _parse_definitions(data, None)


def _normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """L2-normalise rows. Centring is left to the estimators, which centre on the *seen* classes'
    rows only (``zsmed.zeroshot.core.centre_semantics``), never on statistics of unseen classes."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def semantic_matrix(
    definitions: ClassDefinitions, labels: Sequence[str], mode: str, text_encoder: Any | None = None
) -> np.ndarray:
    """One semantic row per label (each part L2-normalised); ``both`` concatenates the parts."""
    definitions.require(labels, mode)
    parts = []
    if mode in ("text", "both"):
        if text_encoder is None:
            from zsmed.encoders import create_text_encoder

            text_encoder = create_text_encoder()
        texts = [definitions.get(label).text for label in labels]
        parts.append(_normalise_rows(np.asarray(text_encoder.encode(texts), dtype=np.float64)))
    if mode in ("attributes", "both"):
        attrs = np.stack([definitions.attribute_vector(label) for label in labels])
        parts.append(_normalise_rows(attrs))
    matrix = np.concatenate(parts, axis=1) / np.sqrt(len(parts))
    return matrix
