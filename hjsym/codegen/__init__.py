"""hjsym.codegen."""
