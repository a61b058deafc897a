"""The submission corpus: reference code plus one named change per entry (see build.py)."""
