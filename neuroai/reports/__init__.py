"""Reports: figures and self-contained HTML assembly."""

from neuroai.reports.html import Page, Section, badge, figure, pre, table, text

__all__ = ["Page", "Section", "badge", "figure", "pre", "table", "text"]
