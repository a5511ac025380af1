"""hjsym.networks."""
