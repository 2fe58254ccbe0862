"""Dark (default) and light themes: Fusion style with a palette, mid-grey chrome and no bright
panels beside the image, as reading-room viewers do."""

from __future__ import annotations

from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QWidget

THEMES = ("dark", "light")

# role -> (dark, light)
_COLOURS: dict[QPalette.ColorRole, tuple[str, str]] = {
    QPalette.ColorRole.Window: ("#2b2d30", "#efefef"),
    QPalette.ColorRole.WindowText: ("#dcdcdc", "#1e1e1e"),
    QPalette.ColorRole.Base: ("#1f2023", "#ffffff"),
    QPalette.ColorRole.AlternateBase: ("#26282b", "#f5f5f5"),
    QPalette.ColorRole.ToolTipBase: ("#3a3d41", "#ffffdc"),
    QPalette.ColorRole.ToolTipText: ("#e8e8e8", "#1e1e1e"),
    QPalette.ColorRole.PlaceholderText: ("#8a8d91", "#808080"),
    QPalette.ColorRole.Text: ("#dcdcdc", "#1e1e1e"),
    QPalette.ColorRole.Button: ("#35383c", "#e4e4e4"),
    QPalette.ColorRole.ButtonText: ("#dcdcdc", "#1e1e1e"),
    QPalette.ColorRole.BrightText: ("#ff6b6b", "#c00000"),
    QPalette.ColorRole.Highlight: ("#3d6fa8", "#3d7fd6"),
    QPalette.ColorRole.HighlightedText: ("#ffffff", "#ffffff"),
    QPalette.ColorRole.Link: ("#7fb2ff", "#1f5fbf"),
    QPalette.ColorRole.Mid: ("#44474b", "#c8c8c8"),
    QPalette.ColorRole.Dark: ("#1a1b1d", "#a0a0a0"),
    QPalette.ColorRole.Light: ("#4a4d52", "#ffffff"),
}
_DISABLED_TEXT = ("#7a7d80", "#9a9a9a")

# Colours views share (icons, warnings), per theme.
ACCENTS: dict[str, dict[str, str]] = {
    "dark": {"icon": "#c8c8c8", "warning": "#e0a030", "error": "#ff7070", "muted": "#9a9da1"},
    "light": {"icon": "#404040", "warning": "#a86400", "error": "#b00020", "muted": "#6a6a6a"},
}

_current = "dark"

# Status colours the views write into their labels' style sheets (dark value, light value): the
# dark theme's soft green and red are too pale to read on the light theme's near-white.
STATUS_COLOURS = (("#66bb6a", "#2e7d32"), ("#ef5350", "#c62828"))
OK_COLOUR, ERROR_COLOUR = STATUS_COLOURS[0][0], STATUS_COLOURS[1][0]


def palette(name: str) -> QPalette:
    if name not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)}, not {name!r}")
    column = THEMES.index(name)
    pal = QPalette()
    for role, colours in _COLOURS.items():
        pal.setColor(role, QColor(colours[column]))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(_DISABLED_TEXT[column]))
    return pal


def stylesheet(name: str) -> str:
    mid = _COLOURS[QPalette.ColorRole.Mid][THEMES.index(name)]
    return (
        f"QSplitter::handle {{ background: {mid}; }}"
        "QSplitter::handle:horizontal { width: 3px; } QSplitter::handle:vertical { height: 3px; }"
        "QToolBar { border: none; spacing: 4px; }"
        "QTabBar::tab { padding: 4px 12px; }"
    )


def apply_theme(app: QApplication, name: str = "dark") -> None:
    """Fusion style, the theme's palette and a few rules; call again to switch."""
    global _current
    app.setStyle("Fusion")
    app.setPalette(palette(name))
    app.setStyleSheet(stylesheet(name))
    _current = name


def current_theme() -> str:
    return _current


def accent(role: str) -> str:
    return ACCENTS[_current][role]


def icon(name: str) -> QIcon:
    """A qtawesome icon (``name`` as "mdi6.ruler") in the theme's colour; an empty icon where qtawesome cannot
    draw (a tool button then shows its words)."""
    try:
        import qtawesome

        return qtawesome.icon(name, color=accent("icon"))
    except Exception:  # icon fonts missing: text-only actions still work
        return QIcon()


def tint(colour: str | None, name: str | None = None) -> str | None:
    """A status colour (given as its dark-theme value) as the theme ``name`` (default: the current
    one) shows it."""
    if colour is None:
        return None
    column = THEMES.index(name or _current)
    for pair in STATUS_COLOURS:
        if colour.lower() in pair:
            return pair[column]
    return colour


def retint(root: QWidget, name: str) -> None:
    """Status colours already in the style sheets of ``root``'s widgets, in theme ``name``'s values."""
    column = THEMES.index(name)
    for widget in [root, *root.findChildren(QWidget)]:
        sheet = widget.styleSheet()
        if not sheet:
            continue
        new = sheet
        for pair in STATUS_COLOURS:
            new = new.replace(pair[1 - column], pair[column])
        if new != sheet:
            widget.setStyleSheet(new)


def set_status(label: QLabel, text: str, colour: str | None) -> None:
    """A status line: ``text`` in a status colour (given as its dark value) for the current theme."""
    label.setText(text)
    label.setStyleSheet(f"color: {tint(colour)};" if colour else "")
