"""Hardware health: catch the GPU that went bad before its numbers reach a baseline.

In large fleets GPUs degrade one at a time (a link that trained down, HBM rows that need
remapping, a GPU 12% slower than its neighbours, silent data corruption), and one slow GPU
drags every collective of its node down to it. `flopwatt health` answers from what flopwatt
already measures, the way DCGM diagnostics and Meta's GCM do:

- NVML checks per GPU (bench.commands.health.nvml_checks): PCIe link, ECC counts, remapped
  rows and retired pages, NVLink state and errors, power limit, persistence, temperature and
  clock-event reasons; on AMD GPUs amdsmi's (bench.commands.health.amdsmi_checks): PCIe
  link, ECC, XGMI links, power cap, hotspot and HBM temperature, lowest XCD clock, throttling;
- performance per GPU, all GPUs at once, one rank each (bench.commands.health.probe): a fixed matmul
  and a memory copy, and an allreduce across the ranks, compared with the median of the
  device's peers and with the SKU's blessed baseline (bench.commands.health.fleet);
- a silent-data-corruption canary: the same seeded matmul on every device must give
  bit-identical bytes for identical inputs and library versions.

Every check is a row (bench.commands.health.model.Check) with a verdict PASS, WARN, FAIL or N/A and
the reason; a check that cannot run here is N/A with the reason, never FAIL. The rows go to
the run folder's health.jsonl (bench.results.record.HEALTH_FILE), the measurements to cases.jsonl as
ordinary cases, so report, compare and baseline read a health run like any other.
"""
