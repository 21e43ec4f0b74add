"""procman: the Procfile workflow for Python teams, from laptop to production."""

__version__ = "0.1.0"
