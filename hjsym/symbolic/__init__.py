"""hjsym.symbolic."""
