"""Autograder for the PyTorch workflow exercises."""
