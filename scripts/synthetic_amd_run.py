"""Write a synthetic run folder through the AMD power path on any machine, for demos and
report tests: `flopwatt run --power amdsmi` with the test fake of amdsmi installed.

The kernels run on this machine's device (a CPU here); the energy is the fake MI300X's
scripted socket power. run.json says `synthetic: true` with that reason, and reports say
so: the folder shows the path works, never what an AMD GPU measures.

    python scripts/synthetic_amd_run.py [--watts 300] -- --device cpu --shape 64x64x64 --out runs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watts", type=float, default=300.0, help="the fake GPU's power")
    parser.add_argument("run_args", nargs=argparse.REMAINDER, help="-- then `flopwatt run` flags")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from fake_amdsmi import Accumulator, FakeAmdGpu, FakeAmdsmi

    gpu = FakeAmdGpu(energy_accumulator=Accumulator(args.watts), current_socket_power=args.watts)
    sys.modules["amdsmi"] = FakeAmdsmi([gpu])
    from bench.cli import main as flopwatt

    run_args = [a for a in args.run_args if a != "--"]
    return flopwatt(["run", *run_args, "--power", "amdsmi"])


if __name__ == "__main__":
    sys.exit(main())
