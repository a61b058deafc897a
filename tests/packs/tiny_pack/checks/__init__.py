"""The tiny pack's checks."""
