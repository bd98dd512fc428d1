"""Interactive views for the lessons: the only package that imports ipywidgets.

One module per concept module it views (``widgets.pipeline`` over ``labsupport.pipeline``, ...).
Every widget is a thin view over a pure function and exposes its controls and its last result,
so tests can move a slider and read what the student would see.
"""
