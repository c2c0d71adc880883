"""kernels.attention: operation counts, torch's causal mask, backends, the check, the binding."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

import kernels
from bench.devices.base import CpuIdentity, DeviceFacts, GpuIdentity, Unsupported
from kernels import attention
from kernels.attention_check import compare_to_reference, reference_slice
from kernels.spec import AxisError

CPU = DeviceFacts("cpu", "cpu", CpuIdentity(None, "x86_64", frozenset(), 2, 2, None, "none"))


def gpu(vendor: str = "nvidia") -> DeviceFacts:
    return DeviceFacts("cuda", "cuda:0", GpuIdentity(vendor, "some gpu", "9.0", 132))


def case(shape="2,4,2,32,16", dtype="fp32", mask="none", pass_="fwd", backend="auto", **kw):
    options = {"mask": mask, "pass": pass_, "backend": backend}
    return attention.make_case(attention.parse_shape(shape), dtype, "cpu", options=options, **kw)


def prepared(c):
    with attention.precision(c):
        return attention.prepare(c, "cpu")


def counted_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def explicit_attention(q, k, v, mask=None):
    """softmax(Q K^T / sqrt(D)) V with K and V repeated to the query heads."""
    groups = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ v


shapes = st.tuples(
    st.integers(1, 2),  # batch
    st.integers(1, 3),  # kv heads
    st.integers(1, 3),  # query heads per kv head
    st.integers(1, 40),  # Sq
    st.integers(1, 40),  # Skv
    st.sampled_from([8, 16, 24]),  # head dim
)


def qkv(b, hkv, g, sq, skv, d, grad=False):
    q = torch.randn(b, hkv * g, sq, d, requires_grad=grad)
    k = torch.randn(b, hkv, skv, d, requires_grad=grad)
    v = torch.randn(b, hkv, skv, d, requires_grad=grad)
    return q, k, v


def label(b, hkv, g, sq, skv, d):
    return f"{b},{hkv * g},{hkv},{sq},{skv},{d}"


@settings(max_examples=25, deadline=None)
@given(shapes)
def test_forward_ops_equal_flop_counter_of_the_explicit_formulation(dims):
    b, hkv, g, sq, skv, d = dims
    q, k, v = qkv(*dims)
    c = case(label(*dims))
    expected = counted_flops(lambda: explicit_attention(q, k, v))
    assert attention.ops(c) == expected == 4 * b * hkv * g * sq * skv * d
    # ... and FlopCounterMode's own SDPA formula (the one it applies to the fused CUDA ops)
    assert attention.ops(c) == sdpa_flop_count(q.shape, k.shape, v.shape)
    with sdpa_kernel(SDPBackend.MATH):  # what math SDPA decomposes into, GQA included
        assert counted_flops(lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)) == (
            expected
        )


@settings(max_examples=15, deadline=None)
@given(shapes)
def test_backward_is_2_5x_forward_including_the_recompute(dims):
    q, k, v = qkv(*dims, grad=True)
    fwd, bwd, both = (attention.ops(case(label(*dims), pass_=p)) for p in attention.PASSES)
    assert (bwd, both) == (fwd * 5 // 2, fwd * 7 // 2)
    out = explicit_attention(q, k, v)
    grad = torch.randn_like(out)
    explicit_bwd = counted_flops(lambda: torch.autograd.grad(out, (q, k, v), grad))
    assert explicit_bwd == 2 * fwd  # four matmuls; the FlashAttention count adds QK^T again
    assert bwd == explicit_bwd + fwd // 2
    assert bwd == sdpa_backward_flop_count(out.shape, q.shape, k.shape, v.shape)


@settings(max_examples=25, deadline=None)
@given(shapes)
def test_causal_is_top_left_and_its_visible_pairs_are_counted_exactly(dims):
    b, hkv, g, sq, skv, d = dims
    q, k, v = qkv(*dims)
    mask = torch.ones(sq, skv, dtype=torch.bool).tril()  # key j visible to query i iff j <= i
    for backend in (SDPBackend.MATH, SDPBackend.FLASH_ATTENTION):
        with sdpa_kernel(backend):
            got = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        torch.testing.assert_close(got, explicit_attention(q, k, v, mask))
    brute = sum(1 for i in range(sq) for j in range(skv) if j <= i)
    assert attention.visible_pairs(sq, skv, causal=True) == brute == int(mask.sum())
    assert attention.ops(case(label(*dims), mask="causal")) == 4 * b * hkv * g * d * brute


def test_causal_square_is_half_plus_the_diagonal():
    assert attention.visible_pairs(4096, 4096, True) == 4096 * 4097 // 2
    assert attention.visible_pairs(3, 5, True) == 6 and attention.visible_pairs(5, 3, True) == 12


def test_bytes_count_q_k_v_o_and_their_gradients_once():
    # Q and O: 2*4*32*16; K and V: 2*2*32*16
    once = (2 * 2 * 4 * 32 * 16 + 2 * 2 * 2 * 32 * 16) * 4
    assert attention.bytes_moved(case()) == once
    assert attention.bytes_moved(case(pass_="bwd")) == attention.bytes_moved(case(pass_="fwdbwd"))
    assert attention.bytes_moved(case(pass_="bwd")) == 2 * once
    assert attention.bytes_moved(case(dtype="bf16")) == once // 2


def test_convention_is_named_in_every_result():
    for p in attention.PASSES:
        text = attention.ops_convention(case(pass_=p))
        assert "FlashAttention convention" in text
        assert "bwd = 2.5 x fwd incl. recompute" in text and "top-left" in text
    assert attention.math_mode(case(dtype="bf16")) == "bf16"
    assert attention.math_mode(case(dtype="fp32")) == "fp32"  # TF32 off: the fp32 peak


@pytest.mark.parametrize("backend", attention.BACKENDS)
@pytest.mark.parametrize("pass_", attention.PASSES)
def test_every_backend_torch_has_on_cpu_passes_its_check_and_the_rest_say_why(backend, pass_):
    for mask in attention.MASKS:
        c = case("2,4,2,24,40,16", mask=mask, pass_=pass_, backend=backend)
        reason = attention.unsupported_reason(c, CPU)
        if reason is not None:
            assert "CUDA-only" in reason
            with pytest.raises(Unsupported, match="No viable backend"):
                prepared(c)  # torch really has none: the advance reason is true
            continue
        p = prepared(c)
        verdict = p.check()
        assert verdict.ok, verdict
        ran = {"auto": "flash", "flash": "flash", "math": "math"}[backend]
        assert p.details["sdpa_backend"] == ran and p.details["sdpa_backend_requested"] == backend
        assert p.details["enable_gqa"] is True and p.details["sdpa_backend_how"]


@pytest.mark.parametrize("dtype", attention.DTYPES)
@pytest.mark.parametrize("shape", ["1,4,1,48,16", "2,2,2,16,64,32", "1,2,2,64,16,256"])
def test_dtypes_gqa_mqa_and_head_dims_pass_the_check(dtype, shape):
    for pass_ in ("fwd", "fwdbwd"):
        verdict = prepared(case(shape, dtype, mask="causal", pass_=pass_)).check()
        assert verdict.ok, verdict
        assert verdict.tolerance == {"fp32": 1e-4, "bf16": 3e-2, "fp16": 4e-3}[dtype]


def test_the_ops_of_a_bound_call_are_backend_specific_but_the_count_is_not():
    p = prepared(case("1,4,2,16,8", backend="flash"))
    assert p.details["sdpa_ops"] == ["aten::_scaled_dot_product_flash_attention_for_cpu"]
    assert "CPU flash-attention kernel" in p.details["sdpa_backend_note"]
    p = prepared(case("1,4,2,16,8", pass_="bwd", backend="flash"))
    assert p.details["sdpa_ops"][-1] == "aten::_scaled_dot_product_flash_attention_for_cpu_backward"
    assert prepared(case("1,4,2,16,8", backend="math")).details["sdpa_ops"][0] == "aten::bmm"


def test_a_backend_that_is_not_the_one_asked_for_is_an_error():
    c = case(backend="math")  # prepared outside precision(): every backend is enabled
    with pytest.raises(RuntimeError, match="asked for the math SDPA backend but flash ran"):
        attention.prepare(c, "cpu")


def test_backward_calls_repeat_the_same_work_without_accumulating():
    c = case("1,4,2,32,16", pass_="bwd")
    p = prepared(c)
    first = [g.clone() for g in p.run()]
    for _ in range(3):
        again = p.run()
        for a, b in zip(first, again, strict=True):
            assert torch.equal(a, b)
    assert p.check().ok  # the graph is still there after repeated calls
    both = prepared(case("1,4,2,32,16", pass_="fwdbwd")).run()
    assert len(both) == 4 and all(t.grad is None for t in both)


def test_the_check_catches_wrong_outputs_and_gradients():
    torch.manual_seed(0)
    q, k, v = qkv(1, 2, 2, 24, 40, 16)
    dout = torch.randn(1, 4, 24, 16)
    with sdpa_kernel(SDPBackend.MATH):
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    assert compare_to_reference(q, k, v, dout, out, None, causal=True, dtype="fp32").ok
    wrong = out.clone()
    wrong[0, 3, 5, 2] += 0.5
    verdict = compare_to_reference(q, k, v, dout, wrong, None, causal=True, dtype="fp32")
    assert not verdict.ok and "worst: out" in verdict.metric
    # a bottom-right aligned causal mask (FlashAttention-2's choice) is a different result
    bottom_right = torch.ones(24, 40, dtype=torch.bool).tril(diagonal=40 - 24)
    other = explicit_attention(q, k, v, bottom_right)
    assert not compare_to_reference(q, k, v, dout, other, None, causal=True, dtype="bf16").ok
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    o = F.scaled_dot_product_attention(*leaves, is_causal=True, enable_gqa=True)
    grads = torch.autograd.grad(o, leaves, dout)
    assert compare_to_reference(q, k, v, dout, o, grads, causal=True, dtype="fp32").ok
    bad = (grads[0], grads[1] * 1.01, grads[2])
    verdict = compare_to_reference(q, k, v, dout, o, bad, causal=True, dtype="fp32")
    assert not verdict.ok and "worst: dk" in verdict.metric


def test_the_check_looks_at_the_first_and_the_last_batch_and_kv_head():
    torch.manual_seed(0)
    q, k, v = qkv(3, 2, 2, 8, 8, 8)
    out = explicit_attention(q, k, v)
    out[2, 3] += 1.0  # last batch element, last kv group
    verdict = compare_to_reference(q, k, v, None, out, None, causal=False, dtype="fp32")
    assert not verdict.ok and "b2/kv1" in verdict.metric


def test_a_tiny_reference_block_still_gives_the_same_answer():
    torch.manual_seed(0)
    q, k, v = qkv(1, 2, 2, 40, 24, 8)
    dout = torch.randn_like(q)
    whole = reference_slice(q, k, v, dout, True, 0, 1)  # one block: 2 x 40 x 24 scores
    rowwise = reference_slice(q, k, v, dout, True, 0, 1, block_scores=7)  # one row per block
    for name in ("out", "dq", "dk", "dv"):
        torch.testing.assert_close(rowwise[name], whole[name], rtol=1e-5, atol=1e-6)
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    o = F.scaled_dot_product_attention(*leaves, is_causal=True, enable_gqa=True)
    grads = torch.autograd.grad(o, leaves, dout)
    verdict = compare_to_reference(q, k, v, dout, o, grads, True, "fp32", block_scores=7)
    assert verdict.ok and verdict.error < 1e-5


@pytest.mark.parametrize("init", attention.INITS)
def test_every_input_distribution_passes_and_inputs_are_seeded(init):
    assert prepared(case(init=init, pass_="fwdbwd")).check().ok
    a = prepared(case(seed=1)).run()
    assert torch.equal(a, prepared(case(seed=1)).run())
    assert not torch.equal(a, prepared(case(seed=2)).run())


def test_precision_enables_only_the_requested_backend_and_turns_tf32_off():
    before = (torch.backends.cuda.flash_sdp_enabled(), torch.backends.cuda.math_sdp_enabled())
    tf32 = torch.backends.cuda.matmul.allow_tf32
    with attention.precision(case(backend="flash")):
        assert torch.backends.cuda.flash_sdp_enabled()
        assert not torch.backends.cuda.math_sdp_enabled()
        assert not torch.backends.cuda.mem_efficient_sdp_enabled()
        assert torch.backends.cuda.matmul.allow_tf32 is False
    with attention.precision(case(backend="auto")):
        assert torch.backends.cuda.math_sdp_enabled() and torch.backends.cuda.cudnn_sdp_enabled()
    assert (torch.backends.cuda.flash_sdp_enabled(), torch.backends.cuda.math_sdp_enabled()) == (
        before
    )
    assert torch.backends.cuda.matmul.allow_tf32 == tf32


@pytest.mark.parametrize(
    ("facts", "backend", "expected"),
    [
        (CPU, "efficient", "CUDA-only"),
        (CPU, "cudnn", "CUDA-only"),
        (CPU, "flash", None),
        (CPU, "math", None),
        (gpu(), "cudnn", None),
        (gpu(), "flash", None),  # torch's own reasons come from prepare() on the device
        (gpu("amd"), "cudnn", "NVIDIA-only"),
    ],
)
def test_unsupported_reasons(facts, backend, expected):
    reason = attention.unsupported_reason(case(backend=backend), facts)
    assert reason is None if expected is None else expected in reason


# What torch prints on CUDA before "No available kernel. Aborting execution." (sdp_utils.cpp)
CUDA_WARNINGS = [
    "Memory efficient kernel not used because: (Triggered internally at sdp_utils.cpp:12.)",
    "Memory Efficient attention has been runtime disabled. (Triggered internally at x.cpp:1.)",
    "Flash attention kernel not used because: (Triggered internally at sdp_utils.cpp:14.)",
    "Flash attention only supports gpu architectures in the range [sm80, sm90]. Attempting to "
    "run on a sm 7.5 gpu. (Triggered internally at sdp_utils.cpp:300.)",
    "Flash attention does not support the is_causal flag when seqlen_q != seqlen_k.",
    "CuDNN attention kernel not used because: (Triggered internally at sdp_utils.cpp:16.)",
    "cuDNN attention has been runtime disabled.",
]


def test_torch_reasons_keep_only_the_requested_backends_section():
    flash = attention.torch_reasons("flash", CUDA_WARNINGS)
    assert "sm80, sm90" in flash and "is_causal flag" in flash
    assert "runtime disabled" not in flash and "Triggered" not in flash
    assert (
        attention.torch_reasons("cudnn", CUDA_WARNINGS)
        == "cuDNN attention has been runtime disabled."
    )
    assert attention.torch_reasons("flash", ["only one plain warning"]) == "only one plain warning"


def test_no_available_kernel_becomes_unsupported_with_torchs_reasons():
    def no_kernel():
        for message in CUDA_WARNINGS:
            warnings.warn(message, UserWarning, stacklevel=1)
        raise RuntimeError("No available kernel. Aborting execution.")

    with pytest.raises(Unsupported, match=r"no flash SDPA kernel for this case: .*sm80, sm90"):
        attention._observe("flash", no_kernel)

    def broken():
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    with pytest.raises(RuntimeError, match="illegal memory access"):  # failed, not skipped
        attention._observe("flash", broken)


def test_backend_names_from_operators():
    assert attention.backend_of(["_scaled_dot_product_cudnn_attention"]) == "cudnn"
    assert attention.backend_of(["_scaled_dot_product_efficient_attention_backward"]) == "efficient"
    assert attention.backend_of(["bmm", "_safe_softmax"]) == "math"
    assert attention.backend_of([]) == "unknown"


def test_memory_estimate_covers_the_math_backends_score_matrices():
    fused = attention.memory_bytes(case("2,32,8,8192,128", "bf16"))
    math = attention.memory_bytes(case("2,32,8,8192,128", "bf16", backend="math"))
    assert math - fused >= 2 * 32 * 8192 * 8192 * 4
    assert fused > attention.bytes_moved(case("2,32,8,8192,128", "bf16"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2,32,8,4096,128", (2, 32, 8, 4096, 4096, 128)),
        (" 1, 8, 8, 100, 300, 64 ", (1, 8, 8, 100, 300, 64)),
        ("4,64,1,512,64", (4, 64, 1, 512, 512, 64)),
        ("llama3-8b:4096", (4, 32, 8, 4096, 4096, 128)),
        ("llama3-70b:16k", (1, 64, 8, 16384, 16384, 128)),
        ("llama3.2-1b:512", (32, 32, 8, 512, 512, 64)),
        ("gemma2-9b:32768", (1, 16, 8, 32768, 32768, 256)),
    ],
)
def test_shapes_and_model_presets(text, expected):
    shape = attention.parse_shape(text)
    assert tuple(shape[k] for k in ("b", "hq", "hkv", "sq", "skv", "d")) == expected


def test_labels_show_the_shape_and_the_variant():
    assert case("2,4,2,32,16").label() == "2x4x2x32x16 none fwd auto"
    assert (
        case("2,4,2,32,64,16", mask="causal", pass_="bwd").label()
        == "2x4x2x32x64x16 causal bwd auto"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,2,3", "is not B,Hq,Hkv,S,D"),
        ("1,8,8,128,64,1,8", "is not B,Hq,Hkv,S,D"),
        ("1,8,8,128,x", "is not B,Hq,Hkv,S,D"),
        ("", "is not B,Hq,Hkv,S,D"),
        ("0,8,8,128,64", "must be positive"),
        ("1,8,8,-128,64", "must be positive"),
        ("1,6,4,128,64", "not a multiple of Hkv=4"),
        ("1,4,8,128,64", "not a multiple of Hkv=8"),
        ("gpt5:4096", "unknown model 'gpt5'"),
        ("llama3-8b:0", "must be positive"),
        ("llama3-8b:", "is not B,Hq,Hkv,S,D"),
    ],
)
def test_malformed_shapes_are_value_errors(text, message):
    with pytest.raises(AxisError, match=message):
        attention.parse_shape(text)


def test_unknown_dtype_init_and_options_are_value_errors():
    shape = attention.parse_shape("1,1,1,8,8")
    with pytest.raises(AxisError, match="no dtype 'int8'"):
        attention.make_case(shape, "int8", "cpu")
    with pytest.raises(AxisError, match=r"^init 'uniform'"):
        attention.make_case(shape, "fp32", "cpu", init="uniform")
    with pytest.raises(AxisError, match=r"^backend 'xformers'"):
        attention.make_case(shape, "fp32", "cpu", options={"backend": "xformers"})
    with pytest.raises(AxisError, match="no option 'window'"):
        attention.make_case(shape, "fp32", "cpu", options={"window": "128"})


def test_registry_lists_the_module_dtypes():
    assert kernels.kernel_dtypes("attention") == attention.DTYPES
    assert kernels.get_kernel("attention") is attention
