"""hjsym.derive."""
