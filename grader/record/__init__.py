"""The recorded submission: its format, the view the checks read, hand-made records."""
