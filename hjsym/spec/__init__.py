"""hjsym.spec."""
