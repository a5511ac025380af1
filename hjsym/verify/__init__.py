"""The verify layer: every report page compiled (LaTeX) and opened (headless Chromium), as a reader meets it."""
