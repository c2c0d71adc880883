"""Distributed pieces without launching: environment mapping, bus factors, exact inputs."""

import pytest
import torch

from bench.execution.ranks import SINGLE, context_from_env, fingerprint, strip_nproc
from bench.measuring import metrics
from kernels import allreduce
from kernels.spec import AxisError


def test_torchrun_variables():
    env = {
        "RANK": "3",
        "WORLD_SIZE": "8",
        "LOCAL_RANK": "1",
        "MASTER_ADDR": "node0",
        "MASTER_PORT": "1234",
    }
    ctx = context_from_env(env)
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.source) == (3, 8, 1, "torchrun")
    assert (ctx.master_addr, ctx.master_port) == ("node0", "1234") and not ctx.is_root


def test_slurm_variables_are_mapped_when_torchrun_is_absent():
    env = {
        "SLURM_PROCID": "5",
        "SLURM_NTASKS": "16",
        "SLURM_LOCALID": "1",
        "SLURM_LAUNCH_NODE_IPADDR": "10.0.0.7",
    }
    ctx = context_from_env(env)
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.source) == (5, 16, 1, "slurm")
    assert ctx.master_addr == "10.0.0.7" and ctx.master_port == "29500"
    both = {**env, "RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "a"}
    assert context_from_env(both).source == "torchrun"  # torchrun's own variables win


def test_no_launcher_means_one_process():
    assert context_from_env({}) == SINGLE
    assert context_from_env({"RANK": "0", "WORLD_SIZE": "1"}).world_size == 1


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"RANK": "4", "WORLD_SIZE": "4", "MASTER_ADDR": "a"}, "inconsistent"),
        ({"RANK": "x", "WORLD_SIZE": "4"}, "not an integer"),
        ({"SLURM_PROCID": "1", "SLURM_NTASKS": "2"}, "MASTER_ADDR"),
    ],
)
def test_bad_launcher_environments(env, words):
    with pytest.raises(ValueError, match=words):
        context_from_env(env)


@pytest.mark.parametrize("n", range(1, 65))
def test_bus_factors_follow_nccl_tests(n):
    # nccl-tests src/all_reduce.cu: busBw = baseBw * (2*(nranks-1))/nranks; all_gather.cu and
    # reduce_scatter.cu: * (nranks-1)/nranks.
    assert metrics.bus_factor("allreduce", n) == 2 * (n - 1) / n
    assert metrics.bus_factor("allgather", n) == (n - 1) / n
    assert metrics.bus_factor("reduce_scatter", n) == (n - 1) / n
    assert metrics.busbw(2**30, 0.5, "allreduce", n) == (2**30 / 0.5) * (2 * (n - 1) / n)


def test_bus_factor_rejects_an_empty_world():
    with pytest.raises(ValueError):
        metrics.bus_factor("allreduce", 0)


@pytest.mark.parametrize("world", [1, 2, 3, 8, 64])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_exact_inputs_sum_exactly_in_any_order(world, dtype):
    count = 1000
    parts = [allreduce.rank_values(r, 0, count, "cpu").to(dtype) for r in range(world)]
    forward, backward = torch.zeros(count, dtype=dtype), torch.zeros(count, dtype=dtype)
    for part in parts:
        forward += part
    for part in reversed(parts):
        backward += part
    expected = allreduce.expected_sum(world, 0, count, "cpu")
    assert allreduce.count_wrong(forward, expected) == 0
    assert allreduce.count_wrong(backward, expected) == 0


def test_count_wrong_is_exact():
    expected = allreduce.expected_sum(4, 0, 100, "cpu")
    out = expected.clone().float()
    out[[3, 50, 99]] += 1
    assert allreduce.count_wrong(out, expected) == 3


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("8", 8),
        ("8B", 8),
        ("64K", 64_000),
        ("64Ki", 65_536),
        ("1Mi", 2**20),
        ("1M", 10**6),
        ("1Gi", 2**30),
        ("2GiB", 2**31),
        ("256MiB", 256 * 2**20),
    ],
)
def test_sizes_with_units(text, value):
    assert allreduce.parse_size(text) == value


@pytest.mark.parametrize("text", ["", "0", "1T", "-8", "1.5Mi", "abc", "8 bytes"])
def test_bad_sizes(text):
    with pytest.raises(AxisError, match=f"^size {text!r}"):
        allreduce.parse_size(text)


def test_sizes_follow_the_nccl_tests_definition_of_s():
    def case(collective, nbytes, world):
        c = allreduce.make_case(
            {"bytes": nbytes}, "fp32", "cpu", options={"collective": collective, "place": "out"}
        )
        return c.__class__(c.kernel, c.params, c.dtype, c.device, world)

    assert allreduce.counts(case("allreduce", 4096, 4)) == (1024, 1024, 4096)
    assert allreduce.counts(case("allgather", 4096, 4)) == (256, 1024, 4096)  # S = gathered
    assert allreduce.counts(case("reduce_scatter", 4096, 4)) == (1024, 256, 4096)
    assert allreduce.counts(case("allgather", 4100, 3)) == (341, 1023, 4092)  # rounded down
    assert allreduce.ops(case("allreduce", 8, 2)) is None


def test_nproc_is_stripped_before_it_reaches_the_ranks():
    assert strip_nproc(["run", "--nproc", "4", "--device", "cpu"]) == ["run", "--device", "cpu"]
    assert strip_nproc(["run", "--nproc=2"]) == ["run"]


def test_fingerprints_differ_when_arguments_differ():
    assert fingerprint({"a": 1}) == fingerprint({"a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_a_world_of_one_runs_collectives_with_busbw_factor_zero(tmp_path, capsys):
    from bench.cli import main
    from bench.results.record import load_run

    code = main(
        [
            "run",
            "--device",
            "cpu",
            "--kernel",
            "allreduce",
            "--bytes",
            "8,4Ki",
            "--collective",
            "allreduce,allgather,reduce_scatter",
            "--place",
            "out,in",
            "--idle-s",
            "0",
            "--out",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    (run_dir,) = tmp_path.iterdir()
    cases = load_run(run_dir).cases
    assert len(cases) == 12 and (cases["identity.status"] == "ok").all()
    assert (cases["collective.bus_factor"] == 0).all()
    assert (cases["collective.busbw_bytes_per_s"] == 0).all()
    assert (cases["collective.wrong_elements"] == 0).all()
    assert (cases["collective.algbw_bytes_per_s"] > 0).all()
    assert all(any("world size 1" in w for w in ws) for ws in cases["identity.warnings"])
    assert "# allgather, fp32, 1 ranks" in out and "# Out of bounds values : 0 OK" in out
