"""The "DICOM tags" dialog: loads off the GUI thread, filters, copies, and shows a read error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import QTreeWidgetItem, QTreeWidgetItemIterator

from tests.conftest import dicom_test_file
from zsmed.dicom.tags import read_tag_rows, row_matches, summary_text
from zsmed_desktop.tags_dialog import TagsDialog

TIMEOUT = 30_000


def items(dialog: TagsDialog) -> list[QTreeWidgetItem]:
    iterator = QTreeWidgetItemIterator(dialog.tree)
    found = []
    while (item := iterator.value()) is not None:
        found.append(item)
        iterator += 1
    return found


def item_for(dialog: TagsDialog, tag: str, depth: int = 0) -> QTreeWidgetItem:
    def level(item: QTreeWidgetItem) -> int:
        n = 0
        while item.parent() is not None:
            item, n = item.parent(), n + 1
        return n

    found = [item for item in items(dialog) if item.text(0) == tag and level(item) == depth]
    assert len(found) == 1, tag
    return found[0]


def first_item_patient_id(dialog: TagsDialog) -> QTreeWidgetItem:
    """(0010,0020) in the first item of Other Patient IDs Sequence."""
    pid = item_for(dialog, "(0010,1002)").child(0).child(0)
    assert pid.text(0) == "(0010,0020)"
    return pid


def shown(item: QTreeWidgetItem) -> bool:
    while item is not None:
        if item.isHidden():
            return False
        item = item.parent()
    return True


@pytest.fixture()
def ct_dialog(qtbot) -> TagsDialog:
    dialog = TagsDialog(None, dicom_test_file("CT_small.dcm"))
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: not dialog.is_loading(), timeout=TIMEOUT)
    assert dialog.error() is None
    return dialog


def test_loads_every_row_of_the_file(ct_dialog: TagsDialog) -> None:
    path = dicom_test_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    rows, _ = read_tag_rows(path)
    assert ct_dialog.windowTitle() == "DICOM tags — CT_small.dcm"
    assert str(path.parent) not in ct_dialog.windowTitle()
    assert str(path) in ct_dialog.summary.toolTip()
    assert ct_dialog.rows() == rows
    assert len(items(ct_dialog)) == len(rows)
    assert ct_dialog.summary.text() == summary_text(rows) == "270 elements · Explicit VR Little Endian"
    name = item_for(ct_dialog, "(0010,0010)")
    assert [name.text(c) for c in range(4)] == ["(0010,0010)", "Patient's Name", "PN", str(ds.PatientName)]
    # The sequence: an item per sequence item, its elements below it, expanded.
    sq = item_for(ct_dialog, "(0010,1002)")
    assert sq.childCount() == 2 and sq.isExpanded()
    first = sq.child(0)
    assert first.text(0) == "Item 1" and first.childCount() == 2
    assert [first.child(0).text(c) for c in (0, 3)] == ["(0010,0020)", ds.OtherPatientIDsSequence[0].PatientID]
    # Names and VRs are readable: their columns fit the widest entry.
    tree = ct_dialog.tree
    assert tree.columnWidth(1) >= tree.fontMetrics().horizontalAdvance("Media Storage SOP Instance UID")
    assert tree.columnWidth(0) >= tree.fontMetrics().horizontalAdvance("(0002,0000)")


def test_private_rows_are_muted(ct_dialog: TagsDialog) -> None:
    muted = ct_dialog.palette().color(QPalette.ColorRole.PlaceholderText)
    private = item_for(ct_dialog, "(0009,1001)")
    assert private.text(1) == "Full fidelity"
    assert private.foreground(1).color() == muted
    assert item_for(ct_dialog, "(0010,0010)").foreground(1).color() != muted


def test_filter_hides_other_rows_and_keeps_parents(qtbot, ct_dialog: TagsDialog) -> None:
    qtbot.keyClicks(ct_dialog.filter_edit, "Patient")
    qtbot.waitUntil(lambda: "matching" in ct_dialog.summary.text(), timeout=TIMEOUT)
    visible = ct_dialog.visible_rows()
    assert visible and len(visible) < len(ct_dialog.rows())
    assert all(row.kind == "item" or row_matches(row, "Patient") for row in visible)
    assert not shown(item_for(ct_dialog, "(0008,0060)"))  # Modality
    assert shown(item_for(ct_dialog, "(0010,0010)"))
    # A match inside a sequence keeps its item and sequence shown, and opened.
    pid = first_item_patient_id(ct_dialog)
    assert shown(pid) and pid.parent().isExpanded() and pid.parent().parent().isExpanded()
    matching = sum(1 for row in ct_dialog.rows() if row.kind == "element" and row_matches(row, "Patient"))
    assert ct_dialog.summary.text().startswith(f"{matching} matching · ")

    ct_dialog.filter_edit.clear()
    qtbot.waitUntil(lambda: "matching" not in ct_dialog.summary.text(), timeout=TIMEOUT)
    assert shown(item_for(ct_dialog, "(0008,0060)"))
    assert ct_dialog.visible_rows() == ct_dialog.rows()


def test_copy_selected_rows_and_all_shown_rows(qtbot, ct_dialog: TagsDialog) -> None:
    clipboard = QGuiApplication.clipboard()
    clipboard.clear()
    item_for(ct_dialog, "(0010,0010)").setSelected(True)
    first_item_patient_id(ct_dialog).setSelected(True)
    ct_dialog.copy_button.click()
    assert clipboard.text() == ("(0010,0010)\tPatient's Name\tPN\tCompressedSamples^CT1\n"
                                ">>(0010,0020)\tPatient ID\tLO\tABCD1234")

    # Ctrl+C in the tree copies whole rows too.
    clipboard.clear()
    ct_dialog.tree.clearSelection()
    item_for(ct_dialog, "(0008,0060)").setSelected(True)
    ct_dialog.tree.setFocus()
    qtbot.keyClick(ct_dialog.tree, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert clipboard.text() == "(0008,0060)\tModality\tCS\tCT"

    # Nothing selected: every row the filter leaves.
    ct_dialog.tree.clearSelection()
    ct_dialog.filter_edit.setText("abcd1234")
    ct_dialog.apply_filter()
    ct_dialog.copy_rows()
    assert clipboard.text() == ("(0010,1002)\tOther Patient IDs Sequence\tSQ\t2 items\n"
                                ">\tItem 1\t\t2 elements\n"
                                ">>(0010,0020)\tPatient ID\tLO\tABCD1234")


def test_a_file_that_is_not_dicom_is_a_message(qtbot, tmp_path: Path) -> None:
    photo = tmp_path / "holiday photo.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(photo)
    dialog = TagsDialog(None, photo)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.error() is not None, timeout=TIMEOUT)
    assert dialog.message.isVisible() and not dialog.tree.isVisible()
    assert dialog.message.text().startswith("Cannot show the DICOM tags: holiday photo.png: not a DICOM file")
    assert str(tmp_path) not in dialog.message.text()
    assert not dialog.copy_button.isEnabled()
    assert dialog.rows() == []
