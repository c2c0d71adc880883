"""Where a device's committed reference results live: results/baselines/<sku>/.

The folder is named after the peak table's SKU when the device is in it (so an H100 SXM is
always "h100-sxm5-80gb", whatever the driver calls it), else after the device name.
"""

from __future__ import annotations

import re

from bench.devices.base import CpuIdentity, DeviceIdentity
from bench.peaks.table import row_for


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-") or "unknown"


def sku_key(identity: DeviceIdentity) -> str:
    """A stable folder name for the device's SKU."""
    if isinstance(identity, CpuIdentity):
        return "cpu-" + slug(identity.model or identity.arch)
    row, _ = row_for(identity)
    return slug(row.sku if row is not None else identity.name)
