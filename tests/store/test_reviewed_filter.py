"""``list_predictions(reviewed=...)``: the reviewed results found by the store's own query (the
reading room's case-log screen used to scan every page for them)."""

from __future__ import annotations

import io
from pathlib import Path

from tests.store.conftest import fake_results, photos
from zsmed.runtime.bundle import Bundle
from zsmed.store import open_case_log


def test_reviewed_filter_true_false_none(log_env: Path, bundle: Bundle) -> None:
    results = fake_results(photos(10), abstain_every=3)
    with open_case_log(log_env / "log.sqlite") as log:
        ids = log.record_predictions(bundle, results)
        confirmable = [i for i, r in zip(ids, results, strict=True) if not r.abstain and not r.error]
        log.review(confirmable[0], confirm=True)
        abstained = next(i for i, r in zip(ids, results, strict=True) if r.abstain)
        log.review(abstained, correct_to=bundle.card["class_names"][0], comment="seen by the reader")
        reviewed = sorted([confirmable[0], abstained])

        assert [r.id for r in log.list_predictions(reviewed=True)] == reviewed
        assert all(r.review is not None for r in log.list_predictions(reviewed=True))
        not_reviewed = [i for i in ids if i not in reviewed]
        assert [r.id for r in log.list_predictions(reviewed=False)] == not_reviewed
        assert [r.id for r in log.list_predictions(reviewed=False)] == [r.id for r in log.list_predictions(
            unreviewed=True)]
        assert [r.id for r in log.list_predictions(reviewed=None)] == ids
        # combined with the other filters, newest first, paged
        assert [r.id for r in log.list_predictions(reviewed=True, abstained=True)] == [abstained]
        assert [r.id for r in log.list_predictions(reviewed=True, newest_first=True, limit=1)] == [max(reviewed)]
        assert [r.id for r in log.list_predictions(reviewed=True, offset=1)] == [max(reviewed)]
        assert [r.id for r in log.iter_predictions(reviewed=True)] == reviewed
        out = io.StringIO()
        assert log.export_csv(out, reviewed=True) == 2
        assert len(out.getvalue().strip().splitlines()) == 3
