"""hjsym.reports.figures."""
