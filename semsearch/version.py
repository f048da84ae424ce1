"""The version of semsearch (stamped on every index manifest)."""

__version__ = "0.1.0"
