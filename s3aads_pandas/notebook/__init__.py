"""Notebook surfaces: the ``%%s3aads`` magic with its SQL, and the explorer (``notebook`` extra)."""
