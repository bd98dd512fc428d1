"""Tests of labsupport, of the notebooks, of the course tooling and of the browser view."""
