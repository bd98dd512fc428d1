"""labsupport: the small library behind the CI/CD-for-ML teaching lab.

One module per course concept; this file only names the version. Notebooks import modules,
not names: ``from labsupport import pipeline`` and then ``pipeline.run(...)``.
"""

__version__ = "0.1.0"
