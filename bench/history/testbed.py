"""Testbed identity: host + GPU identity + SKU, the unit a baseline and a noise model belong to.

Two H100s in one node are two testbeds, and so is one H100 before and after a swap: numbers
are never pooled across GPUs. The GPU is named by its UUID, else its serial, else its PCI
address (BDF); a run without any of the three (a CPU run, an old run folder) is named by host
and SKU alone. A multi-rank run is one testbed: the set of its ranks' GPUs (its collectives
measure them together); a nightly that wants per-GPU series runs one single-GPU run per GPU
(`flopwatt run --device cuda:N`).

The id is readable and stable: `<host>/<sku>/<8 hex>`, the hex a hash of the three parts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.errors import UsageError


@dataclass(frozen=True)
class Testbed:
    """Where a run ran: host, SKU and the GPU identity (None where a run did not record it)."""

    host: str
    sku: str
    gpu_uuid: str | None = None
    gpu_serial: str | None = None
    gpu_bdf: str | None = None

    @property
    def gpu_key(self) -> str:
        """The strongest GPU identity recorded: uuid, else serial, else BDF, else none."""
        for kind, value in (("uuid", self.gpu_uuid), ("serial", self.gpu_serial)):
            if value:
                return f"{kind}:{value}"
        return f"bdf:{self.gpu_bdf}" if self.gpu_bdf else "none"

    @property
    def id(self) -> str:
        digest = hashlib.sha1(f"{self.host}|{self.sku}|{self.gpu_key}".encode()).hexdigest()
        return f"{self.host}/{self.sku}/{digest[:8]}"


def _dig(data: Any, *path: str) -> Any:
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _first(*values: Any) -> str | None:
    for value in values:
        if value not in (None, ""):
            return str(value)
    return None


def _joined(values: Sequence[str | None]) -> str | None:
    """Several ranks' values as one sorted, comma-joined string; None if any is unknown."""
    if not values or any(v is None for v in values):
        return None
    return ",".join(sorted(str(v) for v in values))


def _gpu(meta: dict[str, Any], facts: dict[str, Any]) -> tuple[str | None, ...]:
    env = meta.get("environment") or {}
    uuid = _first(facts.get("uuid"), _dig(env, "gpu", "uuid"))
    serial = _first(_dig(env, "nvml", "serial"), _dig(env, "amdsmi", "serial"))
    bdf = _first(facts.get("pci_bus_id"), _dig(env, "gpu", "pci_bus_id"))
    return uuid, serial, bdf


def testbed_of(meta: dict[str, Any], sku: str | None = None) -> Testbed:
    """The testbed of a run from its run.json (`sku` when the caller knows it already);
    UsageError when it names no host or device."""
    from bench.results.blessed.runs import run_sku

    try:
        sku = sku or run_sku(meta)
    except ValueError as exc:
        raise UsageError(f"no testbed: {exc}") from None
    host = _first(_dig(meta, "environment", "host", "hostname"), meta.get("host"))
    if host is None:
        raise UsageError("no testbed: run.json records no host name (environment.host.hostname)")
    uuid, serial, bdf = _gpu(meta, meta.get("device_facts") or {})
    ranks = meta.get("ranks") or []
    if len(ranks) > 1:  # a multi-rank job: the set of its GPUs, on the set of its hosts
        per_rank = [_gpu({}, r.get("device_facts") or {}) for r in ranks]
        uuid, serial, bdf = (_joined([g[i] for g in per_rank]) for i in range(3))
        host = ",".join(sorted({str(r.get("host") or host) for r in ranks}))
    return Testbed(host=host, sku=sku, gpu_uuid=uuid, gpu_serial=serial, gpu_bdf=bdf)
