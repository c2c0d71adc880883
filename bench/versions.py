"""Versions stamped on every run so that readers never mix incompatible data.

SCHEMA_VERSION changes with the shape of the stored data (major: readers must refuse;
minor: fields added). METHOD_VERSION changes whenever the way of measuring changes, so
that trends and comparisons never silently join numbers measured differently.
"""

SCHEMA_VERSION = "2.0"
# 2: cold flush of twice the L2, written then read and synchronised before the timed mark;
# energy windows opened and closed right after a tick of the energy counter.
METHOD_VERSION = 2
