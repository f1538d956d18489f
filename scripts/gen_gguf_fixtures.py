#!/usr/bin/env python3
"""Generate the reference fixtures of v2l-llm's GGUF reader.

Written for gguf-py (PyPI package ``gguf``) 0.19.0 with numpy 2.4.6; run by
hand, never in CI:

    python3 -m venv /tmp/venv-fix
    /tmp/venv-fix/bin/pip install gguf==0.19.0
    /tmp/venv-fix/bin/python scripts/gen_gguf_fixtures.py

Everything is written to ``crates/v2l-llm/tests/fixtures/gguf/``:

* ``values.gguf`` + ``values.json`` - metadata of every GGUF value type
  (all integer widths, f32, f64, bool, strings, arrays of each, nested
  arrays), written with ``GGUFWriter``; the JSON gives each key's type and
  value as gguf-py's ``GGUFReader`` reads them back.
* ``tensors.gguf`` + ``tensors.json`` + ``expected/<name>.npy`` (flat f32) - tensors of
  every type the Rust reader dequantises, in non-trivial shapes. F32/F16/F64
  and the integer types are plain numpy arrays; BF16, Q8_0, Q4_0, Q4_1, Q5_0
  and Q5_1 are quantised with ``gguf.quants.quantize``; the k-quants (for
  which gguf-py has no quantiser) and ``*_bits`` variants of the legacy types
  are random block bytes with finite random f16 scales. Expected values are
  ``gguf.quants.dequantize`` of the stored bytes (``astype(float32)`` for the
  plain types). The JSON lists each tensor's type, row-major shape, GGUF dims
  and file offset as ``GGUFReader`` reports them, and gguf-py's table of
  block geometry. The file uses ``general.alignment = 64``.
* ``big_endian.gguf`` - a tiny big-endian file (the reader must reject it).
* ``smollm2_q4_1.json`` - when the real SmolLM2-135M-Instruct Q4_1 GGUF is
  cached (``$V2L_HOME`` or ``~/.cache/v2l``, asset ``smollm2-135m``): its
  header facts, every scalar metadata value, summaries of the metadata arrays,
  and per tensor its type, shape, offset and checksums of gguf-py's
  dequantised f32 values (sum, sum of |x|, sum of squares in f64 and the
  first 8 values).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V
from gguf import quants

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "crates" / "v2l-llm" / "tests" / "fixtures" / "gguf"
SMOLLM2 = "smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"


def f32(x: float) -> float:
    """The value rounded to f32, as a Python float (exactly representable)."""
    return float(np.float32(x))


# ---------------------------------------------------------------- metadata

def values_spec() -> list[tuple[str, object, V, V | None]]:
    """(key, value, type, array element type) for values.gguf."""
    return [
        ("test.u8", 200, V.UINT8, None),
        ("test.i8", -100, V.INT8, None),
        ("test.u16", 60000, V.UINT16, None),
        ("test.i16", -30000, V.INT16, None),
        ("test.u32", 4_000_000_000, V.UINT32, None),
        ("test.i32", -2_000_000_000, V.INT32, None),
        ("test.f32", 1.2345678, V.FLOAT32, None),
        ("test.f32_subnormal", 1e-40, V.FLOAT32, None),
        ("test.bool_true", True, V.BOOL, None),
        ("test.bool_false", False, V.BOOL, None),
        ("test.string", 'h\u00e9llo w\u00f6rld \u2713 \U0001f980\n\t"quoted"', V.STRING, None),
        ("test.string_empty", "", V.STRING, None),
        ("test.u64", 2**64 - 1, V.UINT64, None),
        ("test.i64", -(2**63), V.INT64, None),
        ("test.f64", 2.718281828459045, V.FLOAT64, None),
        ("test.f64_big", -1.5e300, V.FLOAT64, None),
        ("arr.u8", [0, 1, 255], V.ARRAY, V.UINT8),
        ("arr.i8", [-128, 0, 127], V.ARRAY, V.INT8),
        ("arr.u16", [0, 65535, 7], V.ARRAY, V.UINT16),
        ("arr.i16", [-32768, 32767], V.ARRAY, V.INT16),
        ("arr.u32", [0, 4294967295, 49152], V.ARRAY, V.UINT32),
        ("arr.i32", [-2147483648, 2147483647, 3, 1], V.ARRAY, V.INT32),
        ("arr.f32", [1.5, -2.25, 1e-3, 3.4e38], V.ARRAY, V.FLOAT32),
        ("arr.bool", [True, False, True], V.ARRAY, V.BOOL),
        ("arr.str", ["a", "", "\u00fcn\u00efc\u00f6d\u00e9", "\u0120the"], V.ARRAY, V.STRING),
        ("arr.u64", [0, 2**64 - 1], V.ARRAY, V.UINT64),
        ("arr.i64", [-(2**63), 2**63 - 1, -1], V.ARRAY, V.INT64),
        ("arr.f64", [0.1, -1e-300, 12345.678], V.ARRAY, V.FLOAT64),
        # Nested arrays: the inner element types are inferred by gguf-py
        # (int -> INT32, float -> FLOAT32, str -> STRING).
        ("arr.nested_i32", [[1, 2, 3], [4], [-5, 6]], V.ARRAY, V.ARRAY),
        ("arr.nested_str", [["a", "b"], ["c"]], V.ARRAY, V.ARRAY),
        ("arr.nested_mixed", [[1, 2], ["x"], [0.5]], V.ARRAY, V.ARRAY),
        ("arr.nested3_f32", [[[1.0], [2.0, 3.0]], [[4.5]]], V.ARRAY, V.ARRAY),
    ]


def infer(v: object) -> V:
    return V.get_type(v)


def encode(value: object, vtype: V, sub: V | None) -> dict:
    """The JSON form the Rust test rebuilds from a GgufValue."""
    if vtype == V.ARRAY:
        assert isinstance(value, list) and value
        sub = sub if sub is not None else infer(value[0])
        if sub == V.ARRAY:
            items = [encode(x, V.ARRAY, None) for x in value]
        else:
            items = [scalar(x, sub) for x in value]
        return {"type": "ARRAY", "element_type": sub.name, "value": items}
    return {"type": vtype.name, "value": scalar(value, vtype)}


def scalar(v: object, t: V) -> object:
    if t == V.FLOAT32:
        return f32(v)  # type: ignore[arg-type]
    return v


def check_against_reader(path: Path, spec: list) -> None:
    """Cross-checks the declared values with what GGUFReader reads back."""
    r = gguf.GGUFReader(path)
    for key, value, vtype, sub in spec:
        field = r.fields[key]
        assert field.types[0] == vtype, key
        if vtype == V.ARRAY and sub != V.ARRAY:
            got = field.contents()
            want = [scalar(x, sub) for x in value]
            assert list(got) == want, (key, got, want)
        elif vtype != V.ARRAY:
            got = field.contents()
            assert got == scalar(value, vtype), (key, got, value)


def write_values(out: Path) -> None:
    spec = values_spec()
    w = gguf.GGUFWriter(out / "values.gguf", arch="test")
    for key, value, vtype, sub in spec:
        w.add_key_value(key, value, vtype, sub_type=sub)
    # One small tensor, default alignment 32.
    w.add_tensor("t", np.arange(6, dtype=np.float32).reshape(2, 3))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    check_against_reader(out / "values.gguf", spec)
    r = gguf.GGUFReader(out / "values.gguf")
    expected = {"general.architecture": {"type": "STRING", "value": "test"}}
    for key, value, vtype, sub in spec:
        expected[key] = encode(value, vtype, sub)
    doc = {
        "version": 3,
        "alignment": 32,
        "data_offset": int(r.data_offset),
        "metadata": expected,
        "tensors": [{"name": "t", "shape": [2, 3], "values": list(range(6))}],
    }
    (out / "values.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------- tensors

# Byte offsets of the f16 scale fields inside one block, for random blocks.
F16_FIELDS = {
    Q.Q8_0: [0],
    Q.Q4_0: [0],
    Q.Q4_1: [0, 2],
    Q.Q5_0: [0],
    Q.Q5_1: [0, 2],
    Q.Q2_K: [80, 82],
    Q.Q3_K: [108],
    Q.Q4_K: [0, 2],
    Q.Q5_K: [0, 2],
    Q.Q6_K: [208],
}


def random_blocks(rng: np.random.Generator, qtype: Q, shape: tuple[int, ...]) -> np.ndarray:
    """Random block bytes for a tensor of `shape` (row-major), with every f16
    scale field set to a finite value of either sign."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    assert shape[-1] % block == 0
    n_blocks = int(np.prod(shape)) // block
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        scales = rng.uniform(-0.02, 0.02, size=n_blocks).astype(np.float16)
        raw[:, off:off + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(*shape[:-1], shape[-1] // block * size)


def tensors_spec(rng: np.random.Generator) -> list[tuple[str, np.ndarray, Q | None, np.ndarray]]:
    """(name, array to store, raw ggml type or None, expected f32 values)."""
    out = []

    def plain(name: str, arr: np.ndarray) -> None:
        out.append((name, arr, None, arr.astype(np.float32)))

    def quantised(name: str, data: np.ndarray, qtype: Q) -> None:
        raw = quants.quantize(data.astype(np.float32), qtype)
        out.append((name, raw, qtype, quants.dequantize(raw, qtype)))

    def raw_blocks(name: str, qtype: Q, shape: tuple[int, ...]) -> None:
        raw = random_blocks(rng, qtype, shape)
        out.append((name, raw, qtype, quants.dequantize(raw, qtype)))

    plain("f32", rng.standard_normal((2, 32, 2)).astype(np.float32))
    plain("f16", (rng.standard_normal((2, 32, 2)) * 3).astype(np.float16))
    special16 = np.array(
        [0.0, -0.0, np.inf, -np.inf, 65504.0, -65504.0, 2.0**-24, -(2.0**-24),
         2.0**-14, 6.1e-5, 1.0, -1.0, 0.333, 1e-7, 3e-8, 0.5],
        dtype=np.float16,
    ).reshape(2, 8)
    plain("f16_special", special16)
    plain("f64", rng.standard_normal((5, 3)) * 1e3)
    plain("i8", rng.integers(-128, 128, size=(4, 4), dtype=np.int8))
    plain("i16", rng.integers(-32768, 32768, size=(2, 9), dtype=np.int16))
    plain("i32", np.array([[0, 1, -1, 2**31 - 1, -(2**31), 16777217, 123456789]], dtype=np.int32))
    plain("i64", np.array([[0, -(2**63), 2**63 - 1], [2**53 + 1, -7, 16777217]], dtype=np.int64))
    plain("scalar", np.array(2.5, dtype=np.float32))
    plain("empty", np.zeros((0, 4), dtype=np.float32))

    bf = rng.standard_normal((3, 40)).astype(np.float32)
    bf[0, :4] = [np.inf, -np.inf, 0.0, -0.0]
    bf[0, 4] = 3.0e38
    quantised("bf16", bf, Q.BF16)

    base = rng.standard_normal((3, 64)).astype(np.float32)
    base[1, :32] = 0.0          # a block whose scale is zero
    base[2, 32:] = 0.75         # a constant block
    quantised("q8_0", base, Q.Q8_0)
    quantised("q4_0", base, Q.Q4_0)
    quantised("q4_1", rng.standard_normal((2, 3, 64)), Q.Q4_1)
    quantised("q4_1_flat", base, Q.Q4_1)
    quantised("q5_0", rng.standard_normal((4, 32)), Q.Q5_0)
    quantised("q5_1", rng.standard_normal((2, 2, 32)) * 5 + 1, Q.Q5_1)

    for qtype, shape in [
        (Q.Q8_0, (2, 96)), (Q.Q4_0, (3, 64)), (Q.Q4_1, (2, 2, 32)),
        (Q.Q5_0, (2, 64)), (Q.Q5_1, (3, 32)),
        (Q.Q2_K, (2, 256)), (Q.Q3_K, (3, 256)), (Q.Q4_K, (2, 512)),
        (Q.Q5_K, (2, 1, 256)), (Q.Q6_K, (3, 256)),
    ]:
        raw_blocks(f"{qtype.name.lower()}_bits", qtype, shape)

    # A type the Rust reader does not dequantise (it must name it).
    iq = rng.integers(0, 256, size=(2, 18), dtype=np.uint8)
    iq[:, 0:2] = np.array([0.01, -0.02], dtype=np.float16).view(np.uint8).reshape(2, 2)
    out.append(("iq4_nl", iq, Q.IQ4_NL, None))
    return out


PLAIN = {Q.F64, Q.I8, Q.I16, Q.I32, Q.I64}


def reader_f32(t: gguf.ReaderTensor) -> np.ndarray:
    """A tensor GGUFReader read, as f32 (gguf-py dequantises all but the
    plain F64/integer types, which are converted with astype)."""
    data = np.asarray(t.data)
    if t.tensor_type in PLAIN:
        return data.astype(np.float32)
    return quants.dequantize(data, t.tensor_type)


def write_tensors(out: Path, rng: np.random.Generator) -> None:
    spec = tensors_spec(rng)
    path = out / "tensors.gguf"
    w = gguf.GGUFWriter(path, arch="test")
    w.add_custom_alignment(64)
    for name, arr, qtype, _ in spec:
        w.add_tensor(name, arr, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    exp_dir = out / "expected"
    exp_dir.mkdir(exist_ok=True)
    for old in exp_dir.glob("*.npy"):
        old.unlink()
    r = gguf.GGUFReader(path)
    by_name = {t.name: t for t in r.tensors}
    entries = []
    for name, _, _, expected in spec:
        t = by_name[name]
        dims = [int(d) for d in t.shape]  # GGUF order, innermost first
        shape = list(reversed(dims))
        entry = {
            "name": name,
            "type": t.tensor_type.name,
            "shape": shape,
            "gguf_dims": dims,
            "file_offset": int(t.data_offset),
            "n_bytes": int(t.n_bytes),
            "expected": None,
        }
        if expected is not None:
            # Cross-check: dequantising what GGUFReader reads gives the same.
            again = reader_f32(t).reshape(-1)
            exp = np.ascontiguousarray(np.asarray(expected, dtype=np.float32).reshape(shape))
            assert np.array_equal(again.view(np.uint32), exp.reshape(-1).view(np.uint32)), name
            np.save(exp_dir / f"{name}.npy", exp.reshape(-1))  # flat; shape is in the JSON
            entry["expected"] = f"expected/{name}.npy"
        entries.append(entry)
    doc = {
        "version": 3,
        "alignment": 64,
        "data_offset": int(r.data_offset),
        "tensors": entries,
        # gguf-py's (block size, bytes per block) of every type it knows.
        "quant_sizes": {q.name: list(v) for q, v in gguf.GGML_QUANT_SIZES.items()},
    }
    (out / "tensors.json").write_text(json.dumps(doc, indent=1) + "\n")


def write_big_endian(out: Path) -> None:
    w = gguf.GGUFWriter(out / "big_endian.gguf", arch="test", endianess=gguf.GGUFEndian.BIG)
    w.add_uint32("test.u32", 7)
    w.add_tensor("t", np.arange(4, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------- SmolLM2

def json_scalar(contents: object) -> object:
    if isinstance(contents, (np.floating, float)):
        return float(contents)
    if isinstance(contents, (np.integer,)):
        return int(contents)
    return contents


def write_smollm2(out: Path, path: Path) -> None:
    r = gguf.GGUFReader(path)
    scalars = {}
    arrays = {}
    for key, field in r.fields.items():
        if key.startswith("GGUF."):
            continue
        main = V(field.types[0])
        if main == V.ARRAY:
            elem = V(field.types[1])
            n = len(field.data)
            pick = sorted({*range(min(n, 8)), *range(max(0, n - 3), n), *(i for i in (100, 1000, 10000) if i < n)})
            arrays[key] = {
                "element_type": elem.name,
                "len": n,
                "samples": {str(i): json_scalar(field.contents(i)) for i in pick},
            }
        else:
            scalars[key] = {"type": main.name, "value": json_scalar(field.contents())}
    if "tokenizer.ggml.token_type" in r.fields:
        tt = np.asarray(r.fields["tokenizer.ggml.token_type"].contents())
        values, counts = np.unique(tt, return_counts=True)
        arrays["tokenizer.ggml.token_type"]["histogram"] = {
            str(int(v)): int(c) for v, c in zip(values, counts)
        }

    tensors = []
    for t in r.tensors:
        dims = [int(d) for d in t.shape]
        shape = list(reversed(dims))
        values = reader_f32(t).reshape(-1).astype(np.float32)
        v64 = values.astype(np.float64)
        tensors.append({
            "name": t.name,
            "type": t.tensor_type.name,
            "shape": shape,
            "gguf_dims": dims,
            "file_offset": int(t.data_offset),
            "n_bytes": int(t.n_bytes),
            "sum": float(v64.sum()),
            "sum_abs": float(np.abs(v64).sum()),
            "sum_sq": float((v64 * v64).sum()),
            "first": [float(x) for x in values[:8]],
        })
    doc = {
        "file": path.name,
        "size": path.stat().st_size,
        "version": 3,
        "alignment": int(r.alignment),
        "data_offset": int(r.data_offset),
        "metadata": scalars,
        "arrays": arrays,
        "tensors": tensors,
    }
    (out / "smollm2_q4_1.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    home = Path(os.environ.get("V2L_HOME", Path.home() / ".cache" / "v2l"))
    ap.add_argument("--smollm2", type=Path, default=home / "assets" / SMOLLM2,
                    help="path of SmolLM2-135M-Instruct.Q4_1.gguf (skipped when absent)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261126)
    write_values(args.out)
    write_tensors(args.out, rng)
    write_big_endian(args.out)
    if args.smollm2.is_file():
        write_smollm2(args.out, args.smollm2)
    else:
        print(f"{args.smollm2} not found: smollm2_q4_1.json not regenerated")
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {args.out} ({total} bytes)")


if __name__ == "__main__":
    main()
