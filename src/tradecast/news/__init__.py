"""News for the desk: sources behind one Protocol, and the time-safe view the analyst reads."""
