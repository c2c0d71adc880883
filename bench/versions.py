"""Versions stamped on every run so that readers never mix incompatible data.

SCHEMA_VERSION changes with the shape of the stored data (major: readers must refuse;
minor: fields added). METHOD_VERSION changes whenever the way of measuring changes, so
that trends and comparisons never silently join numbers measured differently.
"""

SCHEMA_VERSION = "1.2"
METHOD_VERSION = 1
