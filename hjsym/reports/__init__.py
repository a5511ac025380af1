"""hjsym.report."""
