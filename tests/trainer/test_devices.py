"""Which number format a device computes fast: read from the CPU's flags, bf16 on GPUs."""

from __future__ import annotations

import pytest

from labrador.trainer import devices


def test_only_a_flags_line_with_a_bf16_matrix_instruction_set_counts():
    assert devices.bf16_in_cpuinfo("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 avx512_vnni\n")
    assert devices.bf16_in_cpuinfo("flags : fpu amx_tile amx_bf16\n")
    assert not devices.bf16_in_cpuinfo("flags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n")
    assert not devices.bf16_in_cpuinfo("model name : avx512_bf16 lookalike\nflags : fpu avx2\n")
    assert not devices.bf16_in_cpuinfo("")


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_gpus_always_and_on_cpus_only_where_native(monkeypatch, native):
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: native)
    assert devices.fast_dtype("cuda") == devices.fast_dtype("cuda:1") == "bfloat16"
    assert devices.fast_dtype("cpu") == ("bfloat16" if native else "float32")
    assert devices.fast_dtype("mps") == "float32"
