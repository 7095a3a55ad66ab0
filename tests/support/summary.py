"""Figures a test wants in the closing summary of the test session (how many fuzz examples ran,
how large the tenancy matrix is): tests add sections, tests/conftest.py prints them."""

SECTIONS = []


def report(title, lines):
    SECTIONS.append((title, list(lines)))
