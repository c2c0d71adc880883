"""pytest hooks and fixtures of the nightly suite (see bench/nightly/__init__.py)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.nightly import device_spec, flopwatt_plan

_FACTS: dict[str, Any] = {}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per case of the plan, on the kind of device the run will use."""
    if "flopwatt_case" not in metafunc.fixturenames:
        return
    import torch

    spec = device_spec()
    kind = spec.split(":")[0] if spec != "auto" else "cuda"
    if spec == "auto" and not torch.cuda.is_available():
        kind = "cpu"
    cases = flopwatt_plan().cases(kind, kind)
    ids = [f"{c.kernel}-{c.dtype}-{c.label()}".replace(" ", "_") for c in cases]
    metafunc.parametrize("flopwatt_case", cases, ids=ids)


@pytest.fixture(scope="session")
def flopwatt_device() -> Any:
    """The backend, the power source and the device facts, opened once for the session."""
    from bench.devices import get_backend
    from bench.devices.environment import capture_environment
    from bench.power import open_power_source

    backend = get_backend(device_spec())
    facts = backend.facts()
    power = open_power_source("auto", facts).source
    env = capture_environment(facts)
    _FACTS.update(
        device=facts.label,
        identity={k: v for k, v in vars(facts.identity).items() if k != "flags"},
        software=env.get("software"),
        nvml=env.get("nvml"),
        power_source=power.name,
    )
    yield backend, power
    power.close()
    backend.close()


def pytest_benchmark_update_machine_info(config: Any, machine_info: dict[str, Any]) -> None:
    """Add the device: pytest-benchmark's machine_info has no GPU in it."""
    if _FACTS:
        machine_info["flopwatt"] = dict(_FACTS)
