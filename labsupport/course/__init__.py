"""Instructor tooling: single-source exercises, the student self-check, and batch grading.

Course tooling never imports ``labsupport.widgets``.
"""
