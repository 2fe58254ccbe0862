"""Crafted class files (YAML): aliases, size, field types, paths; and class names at build time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.conftest import assert_within_limits, run_guarded
from zsmed.errors import ConfigError

BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
classes:
  nv: {description: *i}
  mel: {description: melanoma}
"""


def test_alias_bomb_is_refused_within_limits(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    assert bomb.stat().st_size < 600
    result = run_guarded(f"""
        from zsmed.zeroshot.classdefs import load_class_definitions
        from zsmed.errors import ConfigError
        try:
            load_class_definitions({str(bomb)!r})
        except ConfigError as exc:
            print(exc)
    """)
    assert_within_limits(result)
    assert "not valid YAML (aliases (*name) are not allowed in zsmed files)" in result.stdout
    assert result.peak_rss_mb < 300


@pytest.mark.parametrize(("text", "message"), [
    ("classes:\n  nv: {description: [a, b]}\n", "'description' must be text, not list"),
    ("classes:\n  nv: {description: x, name: 7}\n", "'name' must be text, not int"),
    ('classes:\n  "nv\\e[31m": {description: x}\n', "must be printable text"),
    ('classes:\n  nv: {description: x, name: "a\\nFORGED"}\n', "'name' must be printable text"),
    ("classes:\n  nv: {description: x, aliases: naevus}\n", "'aliases' must be a list of names"),
    ("classes:\n  nv: {attributes: {a: true}}\n", "attribute values must be numbers"),
    ("classes:\n  nv: {description: x}\nimage_attribute_predictor: ../../elsewhere/p.npz\n",
     "must name a file beside the class file"),
    ("classes:\n  nv: {description: x}\nimage_attribute_predictor: /etc/p.npz\n",
     "must name a file beside the class file"),
])
def test_field_types_and_paths_are_checked(tmp_path: Path, text: str, message: str) -> None:
    from zsmed.zeroshot.classdefs import load_class_definitions

    path = tmp_path / "classes.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_class_definitions(path)


def test_a_huge_class_file_is_refused_unread(tmp_path: Path) -> None:
    from zsmed.descriptions import load_description_file

    path = tmp_path / "big.yaml"
    path.write_text("classes:\n" + "".join(f"  c{i}: {{description: x}}\n" for i in range(150_000)))
    with pytest.raises(ConfigError, match="larger than 2 MB"):
        load_description_file(path)


def test_class_names_are_printable_text_at_build_time() -> None:
    torch = pytest.importorskip("torch")
    from zsmed.classifier import LinearHead, make_classifier
    from zsmed.encoders.base import EncoderSpec
    from zsmed.preprocess import PreprocessConfig

    spec = EncoderSpec("efficientnet-lite0", "image", 1280, preprocess=PreprocessConfig())
    with pytest.raises(ConfigError, match="holds a control or non-printing character"):
        make_classifier(LinearHead(1280, 2), method="fewshot", class_names=["nv", "mel\x1b[2J"], encoder=spec,
                        backbone=torch.nn.Identity())
    built = make_classifier(LinearHead(1280, 2), method="fewshot", class_names=["nv", "mel"], encoder=spec,
                            backbone=torch.nn.Identity())
    assert built.class_names == ["nv", "mel"]
