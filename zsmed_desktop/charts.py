"""Small pyqtgraph charts for the case log: agreement and "no result" rate by month."""

from __future__ import annotations

from collections.abc import Sequence

import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

AGREEMENT_COLOUR = "#4f8fd6"
NO_RESULT_COLOUR = "#e0a030"
Y_TOP = 125  # room above 100 % for the legend
MIN_SLOTS = 6  # a single month is not one huge bar


class MonthlyChart(pg.PlotWidget):
    """Grouped bars per month: agreement with the reader and the share of "no result", in %."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setBackground(self.palette().color(self.backgroundRole()))
        self.setYRange(0, Y_TOP, padding=0)
        self.getPlotItem().getAxis("left").setTicks([[(v, str(v)) for v in range(0, 101, 20)]])
        self.setLabel("left", "%")
        self.showGrid(y=True, alpha=0.25)
        self.addLegend(offset=(10, 5))
        self.months: list[str] = []
        self.agreement: list[float | None] = []
        self.no_result: list[float | None] = []
        self._placeholder = pg.TextItem("No results in the case log yet", anchor=(0.5, 0.5), color="#9a9da1")
        self.addItem(self._placeholder)
        self._placeholder.setPos(0.5, 50)
        self.getPlotItem().getAxis("bottom").setTicks([[]])

    def set_data(self, months: Sequence[str], agreement: Sequence[float | None],
                 no_result: Sequence[float | None]) -> None:
        """Per month ("2026-03"): agreement and no-result rate as fractions (None: nothing to show)."""
        self.months, self.agreement, self.no_result = list(months), list(agreement), list(no_result)
        plot = self.getPlotItem()
        plot.clear()
        if plot.legend is not None:
            plot.legend.clear()
        if not self.months:
            self.addItem(self._placeholder)
            self._placeholder.setPos(0.5, 50)
            plot.getAxis("bottom").setTicks([[]])
            self.setXRange(0, 1)
            return
        x = list(range(len(self.months)))
        width = 0.38
        series = ((-width / 2, self.agreement, AGREEMENT_COLOUR, "Agreement with the reader"),
                  (width / 2, self.no_result, NO_RESULT_COLOUR, "No result"))
        for offset, values, colour, name in series:
            heights = [100.0 * v if v is not None else 0.0 for v in values]
            bars = pg.BarGraphItem(x=[i + offset for i in x], height=heights, width=width, brush=colour, pen=None,
                                   name=name)
            self.addItem(bars)
        plot.getAxis("bottom").setTicks([[(i, m) for i, m in enumerate(self.months)]])
        self.setXRange(-0.6, max(len(self.months), MIN_SLOTS) - 0.4, padding=0)
        self.setYRange(0, Y_TOP, padding=0)
