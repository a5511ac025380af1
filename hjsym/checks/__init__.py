"""hjsym.check."""
