"""segkit: SQL-centric, in-database customer segmentation."""

__version__ = "0.1.0"
