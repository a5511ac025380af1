"""hjsym.verify."""
