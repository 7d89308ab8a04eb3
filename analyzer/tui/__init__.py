"""The terminal UI (`vmcrash open`)."""
