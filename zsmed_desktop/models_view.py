"""Models (Models > Models and their cards…): the models folder's models on the left, the chosen
model's card on the right in plain words — its classes and descriptions, how it was made, what it
was built on, how it checked out, who made it where and when, and whether its files and signature
are intact. Import copies a model file (from a USB stick, say) into the models folder once it has
been verified; Remove moves a model into the folder's ``removed`` subfolder (never deletes it).
"""

from __future__ import annotations

import contextlib
import html
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from zsmed.paths import replacing
from zsmed.progress import Job, Progress
from zsmed.runtime.check import checks_path, describe_record, peek_bundle_id, read_checks
from zsmed.runtime.input_kinds import card_input_kinds, describe_kinds
from zsmed.site import SiteConfig
from zsmed_desktop import theme
from zsmed_desktop.classify_panel import (
    class_titles,
    described_classes,
    model_title,
    peek_card,
    plain_words,
    trust_settings,
)
from zsmed_desktop.workers import start_job

PATH_ROLE = Qt.ItemDataRole.UserRole
REMOVED_FOLDER = "removed"
ERROR_COLOUR, OK_COLOUR = theme.ERROR_COLOUR, theme.OK_COLOUR


def method_words(card: dict[str, Any]) -> str:
    """How the model was made, for a clinician."""
    method = str(card.get("method") or "")
    stitched = method.endswith("+stitched")
    base = method.removesuffix("+stitched")
    if base.startswith("sgps"):
        words = "made by the few-shot generator from the example images (and descriptions, where given)"
        colour = _section(card, "extra").get("colour")
        if isinstance(colour, dict) and colour.get("used"):
            words += ", with the images' colours (examples from the dermatoscope collection it learned on)"
    elif base == "protonet-finetuned-stage":
        words = ("nearest class mean of the example images, on features tuned for its kind of image (the "
                 "few-shot generator did no better on these examples)")
    elif base == "protonet-cosine":
        guard = _section(card, "extra").get("guard")
        why = ""
        if isinstance(guard, dict) and guard.get("fired") == "domain":
            why = " (the examples are unlike the images the few-shot generator learned from)"
        elif isinstance(guard, dict) and guard.get("fired") == "loo":
            why = " (the few-shot generator did no better on these examples)"
        words = f"nearest class mean of the example images{why}"
    elif base.startswith("zeroshot"):
        titles = class_titles(card)
        described = ", ".join(titles.get(c, c) for c in described_classes(card)) or "the classes without examples"
        semantics = _section(card, "extra").get("semantics")
        what = {"attributes": "their listed features", "both": "their description and listed features"}.get(
            str(semantics), "the description")
        words = (f"{described} from {what} alone (zero-shot, no example images), the other classes from their "
                 "example images")
    else:
        words = base or "not stated"
    return words + ("; then moved onto another image encoder (stitched)" if stitched else "")


def _section(card: dict[str, Any], key: str) -> dict[str, Any]:
    value = card.get(key)
    return value if isinstance(value, dict) else {}


def _when(stamp: object) -> str:
    text = str(stamp or "")
    return text[:10] if len(text) >= 10 else (text or "an unknown date")


def card_html(card: dict[str, Any], name: str, verified: str = "",
              checks: Sequence[dict[str, Any]] | None = None) -> str:
    """The model card as a page a clinician reads; ``verified`` is the line about its files and
    signature (empty until checked); ``checks``, the kept summaries of its checks on labelled cases
    at this site (``zsmed.runtime.check``), None where not looked up."""
    e = html.escape
    titles = class_titles(card)
    descriptions = _section(card, "descriptions")
    counts = _section(card, "support_counts")
    described = set(described_classes(card))
    rows = "".join(
        f"<tr><td><b>{e(titles.get(c, c))}</b>"
        f"{'' if titles.get(c, c).lower() == c.lower() else f' <small>({e(c)})</small>'}</td>"
        f"<td>{e(str(descriptions.get(c) or '—'))}</td>"
        f"<td align='right'>{'none: its description' if c in described else e(str(counts.get(c, '—')))}</td></tr>"
        for c in [str(n) for n in card.get("class_names", [])]
    )
    parts = [f"<h2>{e(name)}</h2>"]
    site = str(card.get("site") or "").strip()
    made = f"Made on {e(_when(card.get('exported') or card.get('created')))}"
    parts.append(f"<p>{made}{f' at {e(site)}' if site else ''}.</p>")
    if verified:
        parts.append(f"<p>{verified}</p>")
    parts.append("<h3>Classes</h3><table cellpadding='4'><tr><th align='left'>Class</th>"
                 "<th align='left'>Description</th><th align='right'>Examples</th></tr>" + rows + "</table>")
    facts = [f"How it was made: {e(method_words(card))}."]
    kinds = card_input_kinds(card)
    if kinds:
        facts.append(f"Built on {e(describe_kinds(kinds))}.")
    metrics = _section(card, "metrics")
    loo, held = metrics.get("loo_accuracy"), metrics.get("loo_images")
    if isinstance(loo, int | float) and isinstance(held, int | float) and held:
        right = round(float(loo) * float(held))
        facts.append(f"Each example left out in turn, it named {right} of {int(held)} correctly "
                     f"({100 * float(loo):.0f} %): a first estimate from its own examples, not a validation.")
    elif described:
        facts.append("No leave-one-out estimate: a class known from its description alone has no examples to "
                     "check it on.")
    else:
        facts.append("No leave-one-out estimate (one example in a class).")
    gate = _section(card, "ood_gate")
    if gate:
        facts.append("It gives no result for an image unlike its examples (its 'not like these images' gate).")
    parity = _section(card, "parity")
    if parity.get("images"):
        facts.append(f"Checked when it was saved: both of its run-time engines give the original's probabilities on "
                     f"{int(parity['images'])} of its examples.")
    parts.append("<h3>How it was made and checked</h3><ul>" + "".join(f"<li>{f}</li>" for f in facts) + "</ul>")
    if checks is not None:
        if checks:
            lines = "".join(f"<li>{e(describe_record(record))}</li>" for record in checks[-5:])
            more = f"<p><small>and {len(checks) - 5} earlier check(s)</small></p>" if len(checks) > 5 else ""
            parts.append(f"<h3>Checked on labelled cases at this site</h3><ul>{lines}</ul>{more}")
        else:
            parts.append("<h3>Checked on labelled cases at this site</h3><p>Not yet. Check it on cases whose "
                         "diagnosis is known before relying on it (Check on labelled cases…).</p>")
    use = str(card.get("intended_use") or "").strip()
    if use:
        parts.append(f"<h3>Intended use</h3><p>{e(use)}</p>")
    software = _section(card, "software")
    build = _section(software, "build")
    if build.get("zsmed"):
        parts.append(f"<p><small>Made with zsmed {e(str(build['zsmed']))}.</small></p>")
    return "".join(parts)


def _verify_job(path: Path) -> Job[str]:
    """The line about a model's files and signature (checked with the site's trust settings)."""
    from zsmed.errors import ZsmedError
    from zsmed.runtime.bundle import read_bundle

    yield Progress(0, 1, f"checking {path.name}")
    try:
        require, keys = trust_settings()
        bundle = read_bundle(path, require_signature=require, trusted_keys=keys)
    except ZsmedError as exc:
        return f"✖ This model cannot be used: {html.escape(plain_words(exc.reason))}"
    if bundle.signed_by:
        return f"✔ Files intact; signed by key {html.escape(bundle.signed_by)}, trusted at this site."
    if bundle.signature_present:
        return "✔ Files intact; signed, but no trusted key is set at this site to check the signature."
    return "✔ Files intact; not signed."


class ModelsDialog(QDialog):
    """The models folder's models and their cards; import, remove, use."""

    use_requested = Signal(object)  # the model's Path
    show_requested = Signal(object)  # an image's Path (from a check), to show in the viewer
    models_changed = Signal()

    def __init__(self, site: SiteConfig, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.site = site
        self._checks: dict[str, str] = {}
        self._pending = 0  # checks and imports under way
        self.list = QListWidget()
        self.list.currentItemChanged.connect(lambda *_: self._show_current())
        self.card = QTextBrowser()
        self.card.setOpenLinks(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        import_button = QPushButton("Import a model file…")
        import_button.setToolTip("Copy a model file (.zsmb), e.g. from a USB stick, into the models folder once it "
                                 "is verified")
        import_button.clicked.connect(self.ask_import)
        self.remove_button = QPushButton("Remove…")
        self.remove_button.setToolTip(f"Move the model into the models folder's '{REMOVED_FOLDER}' subfolder")
        self.remove_button.clicked.connect(self.ask_remove)
        self.check_button = QPushButton("Check on labelled cases…")
        self.check_button.setToolTip("Run the model on a folder of cases whose diagnosis is known (one subfolder "
                                     "per class) and see how many it gets right")
        self.check_button.clicked.connect(lambda: self.open_check())
        self.check_dialog: Any = None
        self.use_button = QPushButton("Use this model")
        self.use_button.clicked.connect(self._use)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.list, 1)
        left_layout.addWidget(import_button)
        left_layout.addWidget(self.remove_button)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.card)
        splitter.setSizes([300, 900])
        splitter.setStretchFactor(0, 0)  # a wider window widens the card, not the list of names
        splitter.setStretchFactor(1, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.check_button)
        buttons.addWidget(self.use_button)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addLayout(buttons)
        self.resize(1000, 640)
        self.refresh()

    # --- the list -------------------------------------------------------------------------------
    def folder(self) -> Path:
        return self.site.resolved_models_folder()

    def refresh(self, select: Path | None = None) -> None:
        current = select or self.current_path()
        self.list.clear()
        try:
            files = sorted(self.folder().glob("*.zsmb")) if self.folder().is_dir() else []
        except OSError:
            files = []
        for path in files:
            card = peek_card(path)
            text = (f"{model_title(card, path)}  ({len(class_titles(card))} classes)" if card
                    else f"{path.name} (unreadable)")
            item = QListWidgetItem(text)
            item.setData(PATH_ROLE, str(path))
            item.setToolTip(path.name)
            self.list.addItem(item)
            if current is not None and path == current:
                self.list.setCurrentItem(item)
        if self.list.currentItem() is None and self.list.count():
            self.list.setCurrentRow(0)
        if not files:
            self.card.setHtml("<p>No models in the models folder yet. Build one (Models ▸ Build a classifier…) "
                              "or import a model file.</p>")
        self._update_buttons()

    def current_path(self) -> Path | None:
        item = self.list.currentItem()
        return Path(item.data(PATH_ROLE)) if item is not None else None

    def titles(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def _update_buttons(self) -> None:
        chosen = self.current_path() is not None
        self.remove_button.setEnabled(chosen)
        usable = chosen and not self._checks.get(str(self.current_path()), "").startswith("✖")
        self.use_button.setEnabled(usable)
        self.check_button.setEnabled(usable)

    # --- the card -------------------------------------------------------------------------------
    def _show_current(self) -> None:
        path = self.current_path()
        self._update_buttons()
        if path is None:
            return
        card = peek_card(path)
        if card is None:
            self.card.setHtml(f"<p>{html.escape(path.name)} is not a model file zsmed can read.</p>")
            return
        key = str(path)
        self.card.setHtml(card_html(card, model_title(card, path), self._checks.get(key, "Checking its files…"),
                                    read_checks(path, peek_bundle_id(path))))
        if key not in self._checks:
            self._check(path)

    def _check(self, path: Path) -> None:
        def done(line: str) -> None:
            self._checks[str(path)] = line
            if self.current_path() == path:
                self._show_current()

        self._start(lambda: _verify_job(path), done,
                    lambda message: done(f"✖ This model cannot be used: {html.escape(message)}"))

    def _start(self, make: Any, on_done: Any, on_error: Any) -> None:
        self._pending += 1

        def finished(handler: Any) -> Any:
            def run(value: Any) -> None:
                self._pending -= 1
                handler(value)
            return run

        start_job(make, on_done=finished(on_done), on_error=finished(on_error),
                  on_cancelled=lambda: finished(on_error)("cancelled"), owner=self)

    def checked(self, path: Path) -> str | None:
        return self._checks.get(str(path))

    def card_text(self) -> str:
        return self.card.toPlainText()

    # --- import, remove, use --------------------------------------------------------------------
    def ask_import(self) -> None:
        chosen, _ = QFileDialog.getOpenFileName(self, "Import a model file", "", "zsmed models (*.zsmb)")
        if chosen:
            self.import_file(Path(chosen))

    def import_file(self, source: Path) -> None:
        """Verify ``source`` in a worker, then copy it into the models folder (asking before
        replacing a model of the same name)."""
        target = self.folder() / source.name
        self._say(f"Checking {source.name}…", None)

        def make() -> Job[str]:
            return (yield from _verify_job(source))

        def done(line: str) -> None:
            if line.startswith("✖"):
                self._say(f"Not imported: {source.name}: {html.unescape(line[2:])}", ERROR_COLOUR)
                return
            if target.exists() and target.resolve() != source.resolve():
                answer = QMessageBox.question(self, "Replace the model?",
                                              f"A model named '{target.stem}' is already in the models folder. "
                                              "Replace it?")
                if answer != QMessageBox.StandardButton.Yes:
                    self._say("Not imported.", None)
                    return
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.resolve() != source.resolve():
                    with replacing(target) as temporary:  # a half-copied model never sits in the folder
                        shutil.copyfile(source, temporary)
            except OSError as exc:
                self._say(f"Not imported: cannot write to the models folder ({exc.strerror or exc})", ERROR_COLOUR)
                return
            self._checks[str(target)] = line
            self._say(f"Imported {target.stem}.", OK_COLOUR)
            self.refresh(select=target)
            self.models_changed.emit()

        self._start(make, done, lambda m: self._say(f"Not imported: {m}", ERROR_COLOUR))

    def ask_remove(self) -> None:
        path = self.current_path()
        if path is None:
            return
        answer = QMessageBox.question(self, "Remove the model?",
                                      f"Remove '{path.stem}' from the models? The file is moved into the models "
                                      f"folder's '{REMOVED_FOLDER}' subfolder, not deleted.")
        if answer == QMessageBox.StandardButton.Yes:
            self.remove(path)

    def remove(self, path: Path) -> Path | None:
        removed = self.folder() / REMOVED_FOLDER
        target = removed / path.name
        k = 1
        while target.exists():
            k += 1
            target = removed / f"{path.stem} ({k}){path.suffix}"
        try:
            removed.mkdir(parents=True, exist_ok=True)
            path.replace(target)
        except OSError as exc:
            self._say(f"Cannot move {path.name}: {exc.strerror or exc}", ERROR_COLOUR)
            return None
        self._checks.pop(str(path), None)
        kept = checks_path(path)
        if kept.exists():  # the model's checks go with it; the model is what matters, so a failure is let be
            with contextlib.suppress(OSError):
                kept.replace(checks_path(target))
        self._say(f"Moved {path.stem} into the '{REMOVED_FOLDER}' folder.", None)
        self.refresh()
        self.models_changed.emit()
        return target

    def open_check(self, path: Path | None = None) -> Any:
        """The check window for ``path`` (default: the chosen model; one window at a time, a new model
        replaces the last unless a check is running). ``path`` may lie outside the models folder (a
        model opened from a file)."""
        from zsmed_desktop.check_view import CheckDialog

        path = path or self.current_path()
        if path is None:
            return None
        if self.check_dialog is not None and (self.check_dialog.model != path and not self.check_dialog.is_running()):
            self.check_dialog.close()
            self.check_dialog = None
        if self.check_dialog is None:
            self.check_dialog = CheckDialog(path, self.site.backend, self, site_name=self.site.site_name)
            self.check_dialog.checked.connect(lambda _path: self._show_current())
            self.check_dialog.show_requested.connect(self.show_requested.emit)
        self.check_dialog.show()
        self.check_dialog.raise_()
        return self.check_dialog

    def _use(self) -> None:
        path = self.current_path()
        if path is not None:
            self.use_requested.emit(path)

    def _say(self, text: str, colour: str | None) -> None:
        theme.set_status(self.status, text, colour)

    def busy(self) -> bool:
        return self._pending > 0


__all__: Sequence[str] = ["ModelsDialog", "card_html", "method_words"]
