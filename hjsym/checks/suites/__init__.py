"""Check suites, one module per architecture family."""
