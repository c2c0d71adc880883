"""`flopwatt run` with attention on this CPU: a tiny run end to end, and every bad input."""

import pytest

from bench.cli import main
from bench.results.record import load_run
from kernels import attention

FAST = ["--device", "cpu", "--timeout-s", "1", "--min-time-s", "0.05", "--warmup-s", "0.05"]


def only_run(parent):
    (run,) = [p for p in parent.iterdir() if p.is_dir()]
    return run


def test_a_tiny_attention_run_writes_ok_results_with_kernel_details(tmp_path, capsys):
    code = main(
        [
            "run",
            *FAST,
            "--timeout-s",
            "0.4",
            "--kernel",
            "attention",
            "--attn",
            "1,4,2,32,16;1,2,2,16,48,16",
            "--mask",
            "none,causal",
            "--pass",
            "fwd,bwd",
            "--backend",
            "auto",
            "--dtype",
            "fp32",
            "--out",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    run = load_run(only_run(tmp_path))
    cases = run.cases
    assert len(cases) == 2 * 2 * 2 and (cases["identity.status"] == "ok").all()
    assert set(cases["work.kernel_details.sdpa_backend"]) == {"flash"}  # torch's CPU kernel
    assert set(cases["work.kernel_details.sdpa_backend_requested"]) == {"auto"}
    assert cases["work.correctness.ok"].all()
    for _, row in cases.iterrows():
        pairs = attention.visible_pairs(
            row["identity.params.sq"],
            row["identity.params.skv"],
            row["identity.params.mask"] == "causal",
        )
        fwd = (
            4
            * row["identity.params.b"]
            * row["identity.params.hq"]
            * row["identity.params.d"]
            * pairs
        )
        assert row["work.ops"] == (fwd if row["identity.params.pass"] == "fwd" else fwd * 5 // 2)
        assert "bwd = 2.5 x fwd incl. recompute" in row["work.ops_convention"]
        assert row["identity.math_mode"] == "fp32" and row["rates.peak_source"] == "derived"
        assert len(run.samples(row["identity.case_id"])) == row["timing.n_samples"]
    assert "1x2x2x16x48x16 causal bwd auto" in out


def test_a_backend_the_cpu_lacks_is_skipped_and_the_run_goes_on(tmp_path, capsys):
    args = ["--attn", "1,2,2,16,16", "--backend", "efficient,math", "--pass", "fwd"]
    code = main(["run", *FAST, *args, "--mask", "none", "--dtype", "fp32", "--out", str(tmp_path)])
    assert code == 0
    cases = load_run(only_run(tmp_path)).cases.set_index("identity.params.backend")
    assert cases.loc["efficient", "identity.status"] == "skipped"
    assert "CUDA-only" in cases.loc["efficient", "identity.reason"]
    assert cases.loc["math", "identity.status"] == "ok"
    assert cases.loc["math", "work.kernel_details.sdpa_backend"] == "math"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--attn", "1,2,3"], "--attn: shape '1,2,3' is not B,Hq,Hkv,S,D"),
        (["--attn", "1,8,8,128,64,1,8,8,128,64"], "is not B,Hq,Hkv,S,D"),
        (["--attn", "0,8,8,128,64"], "every dimension must be positive"),
        (["--attn", "1,8,8,-128,64"], "every dimension must be positive"),
        (["--attn", "1,6,4,128,64"], "Hq=6 is not a multiple of Hkv=4"),
        (["--attn", "1,8,8,128,64;"], "empty item in --attn"),
        (["--attn", "gpt5:4096"], "unknown model 'gpt5'"),
        (["--mask", "sideways"], "--mask: mask 'sideways' is not one of none, causal"),
        (["--mask", "causal,"], "empty item"),
        (["--pass", "both"], "--pass: pass 'both' is not one of fwd, bwd, fwdbwd"),
        (["--backend", "xformers"], "--backend: backend 'xformers' is not one of"),
        (["--kernel", "attention", "--shape", "64x64x64"], "--shape gives matmul shapes"),
        (["--kernel", "matmul", "--attn", "1,8,8,128,64"], "--attn gives attention shapes"),
        (["--kernel", "matmul", "--pass", "bwd"], "--pass applies to attention"),
        (["--kernel", "attention", "--dtype", "int8"], "unknown dtype 'int8'"),
        (["--kernel", "attention", "--suite", "matmul"], "nothing to run"),
    ],
)
def test_bad_attention_input_is_one_line_and_exit_2(args, message, capsys, tmp_path):
    code = main(["run", "--device", "cpu", *args, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("flopwatt: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing started, nothing half-written


def test_help_and_list_show_attention(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    assert "--attn" in text and "--mask" in text and "--pass" in text and "--backend" in text
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    assert "attention" in text and "ops = 4*B*Hq*D*P" in text
