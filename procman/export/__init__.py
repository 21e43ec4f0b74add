"""``procman export``: the app's Procfile as units for the machine's own supervisor (systemd,
supervisord, or any exporter written for honcho), rendered from ``templates/``.

``plan`` works out and checks everything first, ``escaping`` holds the pure escapers, ``render``
fills the templates, ``writer`` puts the files in place of the app's previous export.
"""
