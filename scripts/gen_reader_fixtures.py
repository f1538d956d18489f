#!/usr/bin/env python3
"""Generates the fixtures of `crates/v2l-io/tests/it/readers.rs`.

Run by hand (never in CI), from the workspace root:

    python3 -m venv /tmp/venv-fix && /tmp/venv-fix/bin/pip install numpy torch
    /tmp/venv-fix/bin/python scripts/gen_reader_fixtures.py

It writes small files into `crates/v2l-io/tests/fixtures/readers/` with numpy, pickle and
torch themselves, plus `expected.json` holding the values those libraries report (so the Rust
tests compare against an independent implementation, never against their own output). If
`../shared/golden/v2l-tiny/checkpoint.pth` exists, it also loads it with torch and records
shapes, dtypes, sums and first/last values of every tensor in
`v2l_tiny_checkpoint_expected.json`.
"""

import argparse
import collections
import gzip
import io
import json
import os
import pickle
import struct
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "v2l-io", "tests", "fixtures", "readers")
GOLDEN = os.path.join(os.path.dirname(ROOT), "shared", "golden", "v2l-tiny", "checkpoint.pth")

expected = {}


def path(name):
    return os.path.join(OUT, name)


def record_array(name, arr):
    """What numpy says about an array: dtype descr, shape, C-order values."""
    entry = {"descr": np.lib.format.dtype_to_descr(arr.dtype), "shape": list(arr.shape)}
    if arr.dtype.kind in "fiub":
        entry["values"] = np.ascontiguousarray(arr).astype(np.float64).ravel().tolist()
        if arr.dtype.kind in "iub":
            entry["ints"] = [int(x) for x in np.ascontiguousarray(arr).ravel()]
    else:
        entry["strings"] = [str(x) for x in np.ascontiguousarray(arr).ravel()]
    expected[name] = entry


# ----- .npy --------------------------------------------------------------------------------

def gen_npy():
    f32 = (np.arange(24, dtype=np.float32) * 0.5 - 3.0).reshape(2, 3, 4)
    np.save(path("f32.npy"), f32)
    record_array("f32.npy", f32)

    f16 = np.array([0.5, -1.25, 65504.0, 6.1035156e-05, 0.0, -0.0, 3.140625, 1e-7], dtype=np.float16)
    np.save(path("f16.npy"), f16)
    record_array("f16.npy", f16)

    i64 = np.array([[0, -1, 2**40], [-(2**62), 2**63 - 1, 7]], dtype=np.int64)
    np.save(path("i64.npy"), i64)
    record_array("i64.npy", i64)

    fortran = np.asfortranarray(np.arange(24, dtype=np.float64).reshape(2, 3, 4) + 0.25)
    assert fortran.flags.f_contiguous and not fortran.flags.c_contiguous
    np.save(path("fortran_f8.npy"), fortran)
    record_array("fortran_f8.npy", fortran)

    be = np.array([1, -2, 300000, -(2**31)], dtype=">i4")
    np.save(path("be_i4.npy"), be)
    record_array("be_i4.npy", be)

    u8 = np.array([[0, 1, 255], [128, 7, 9]], dtype=np.uint8)
    np.save(path("u8.npy"), u8)
    record_array("u8.npy", u8)

    bools = np.array([True, False, True], dtype=np.bool_)
    np.save(path("bool.npy"), bools)
    record_array("bool.npy", bools)

    # Header versions 2.0 and 3.0 (np.save picks 1.0 for small headers).
    v = np.arange(6, dtype="<u2").reshape(3, 2)
    for version in [(2, 0), (3, 0)]:
        name = "u2_v%d.npy" % version[0]
        with open(path(name), "wb") as fh:
            np.lib.format.write_array(fh, v, version=version)
        record_array(name, v)

    # Like the official global_vocabulary.npy: an object array of str, pickled after the header.
    words = np.array(["cat", "a photo", "naïve café", "", "日本語", "dog"], dtype=object)
    np.save(path("object_str.npy"), words, allow_pickle=True)
    record_array("object_str.npy", words)
    # The same with a protocol-2 pickle (text GLOBAL opcodes, as older numpy wrote them).
    # (np.save now always uses protocol 4, so write the header and the pickle by hand.)
    with open(path("object_str_p2.npy"), "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, np.lib.format.header_data_from_array_1_0(words))
        pickle.dump(words, fh, protocol=2)
    assert list(np.load(path("object_str_p2.npy"), allow_pickle=True)) == list(words)
    record_array("object_str_p2.npy", words)

    uni = np.array([["cat", "a photo"], ["naïve", "日本"]])
    assert uni.dtype.kind == "U"
    np.save(path("unicode.npy"), uni)
    record_array("unicode.npy", uni)


# ----- pickles ----------------------------------------------------------------------------

def lpips_like():
    rng = np.random.default_rng(7)
    return {
        "AlexNet_0": {
            "Conv_0": {
                "kernel": rng.standard_normal((3, 3, 2, 4)).astype(np.float32),
                "bias": rng.standard_normal(4).astype(np.float32),
            },
            "Conv_1": {
                "kernel": np.asfortranarray(rng.standard_normal((2, 5)).astype(np.float32)),
                "bias": np.zeros(5, dtype=np.float32),
            },
        },
        "NetLinLayer_0": {"Conv_0": {"kernel": rng.standard_normal((1, 1, 4, 1)).astype(np.float32)}},
        "meta": {"step": np.int64(1234), "lr": np.float32(0.5), "labels": np.array([3, 1, 2], dtype=np.int16)},
    }


def flatten_arrays(obj, prefix=""):
    out = {}
    for k, v in obj.items():
        name = prefix + "." + k if prefix else k
        if isinstance(v, dict):
            out.update(flatten_arrays(v, name))
        else:
            out[name] = np.asarray(v)
    return out


def gen_pickles():
    ckpt = lpips_like()
    entry = {}
    for name, arr in flatten_arrays(ckpt).items():
        entry[name] = {
            "descr": np.lib.format.dtype_to_descr(arr.dtype),
            "shape": list(arr.shape),
            "values": np.ascontiguousarray(arr).astype(np.float64).ravel().tolist(),
        }
    for proto in [0, 2, 4, 5]:
        with open(path("nested_arrays_p%d.pkl" % proto), "wb") as fh:
            pickle.dump(ckpt, fh, protocol=proto)
    expected["nested_arrays"] = entry

    # Plain Python values at every protocol; the Rust test spells these values out.
    shared = ["shared", 1]
    ns = argparse.Namespace(lr=0.00045, name="tiny", layers=[1, 2])
    misc = {
        "none": None,
        "true": True,
        "false": False,
        "small": 7,
        "neg": -300,
        "i32": -(2**31),
        "i64max": 2**63 - 1,
        "i64min": -(2**63),
        "big": 2**70 + 5,
        "float": 1.5,
        "nan_free": -2.25e-10,
        "str": "héllo \u2603 \n 'quoted' \\ end",
        "empty_str": "",
        "bytes": b"\x00\xff\x10abc",
        "empty_bytes": b"",
        "bytearray": bytearray(b"xy"),
        "list": [1, "two", 3.0],
        "tuple": (1, ("nested", None)),
        "empty_tuple": (),
        "set": {5},
        "frozenset": frozenset({"z"}),
        "dict_int_keys": {1: "one", 2: "two"},
        "od": collections.OrderedDict([("b", 1), ("a", 2)]),
        "shared_a": shared,
        "shared_b": shared,
        "ns": ns,
    }
    for proto in range(6):
        with open(path("misc_p%d.pkl" % proto), "wb") as fh:
            pickle.dump(misc, fh, protocol=proto)


# ----- IDX --------------------------------------------------------------------------------

def idx_bytes(type_code, dims, payload):
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def gen_idx():
    # u8 3x4x5, values (7*i) % 256 -- the Rust test checks this closed form.
    u8 = bytes((7 * i) % 256 for i in range(60))
    plain = idx_bytes(0x08, [3, 4, 5], u8)
    # Compression is detected by content: the gzip file has no .gz suffix and the plain
    # file has one.
    with open(path("u8_3x4x5.idx.gz"), "wb") as fh:
        fh.write(plain)
    with open(path("u8_3x4x5_gzipped.idx"), "wb") as fh:
        fh.write(gzip.compress(plain))
    # Labels-like 1-D u8.
    with open(path("labels_u8.idx"), "wb") as fh:
        fh.write(idx_bytes(0x08, [10], bytes([9, 0, 0, 3, 0, 2, 7, 2, 5, 5])))
    # i8, i16, i32, f32, f64 1-D files, values i - 3 (and (i - 3) * 0.5 for floats).
    vals = [i - 3 for i in range(6)]
    with open(path("i8.idx"), "wb") as fh:
        fh.write(idx_bytes(0x09, [6], struct.pack(">6b", *vals)))
    with open(path("i16.idx"), "wb") as fh:
        fh.write(idx_bytes(0x0B, [2, 3], struct.pack(">6h", *[v * 1000 for v in vals])))
    with open(path("i32.idx"), "wb") as fh:
        fh.write(idx_bytes(0x0C, [6], struct.pack(">6i", *[v * 100000 for v in vals])))
    with open(path("f32.idx"), "wb") as fh:
        fh.write(idx_bytes(0x0D, [3, 2], struct.pack(">6f", *[v * 0.5 for v in vals])))
    with open(path("f64.idx"), "wb") as fh:
        fh.write(idx_bytes(0x0E, [6], struct.pack(">6d", *[v * 0.5 for v in vals])))


# ----- torch ------------------------------------------------------------------------------

def tensor_entry(t):
    t = t.detach()
    flat = t.contiguous().reshape(-1)
    return {
        "dtype": str(t.dtype).replace("torch.", ""),
        "shape": list(t.shape),
        "values": flat.to(torch.float64).tolist() if flat.numel() <= 64 else None,
        "sum": float(flat.to(torch.float64).sum()),
        "first": float(flat[0].to(torch.float64)) if flat.numel() else None,
        "last": float(flat[-1].to(torch.float64)) if flat.numel() else None,
    }


def gen_torch_save():
    torch.manual_seed(0)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    obj = {
        "base": base,
        "transposed": base.t(),  # non-contiguous view of the same storage
        "slice": base[1:3, ::2],  # storage offset + strides
        "row": base[2],  # storage offset
        "f16": torch.tensor([0.5, -1.5, 1024.0], dtype=torch.float16),
        "bf16": torch.tensor([[1.0, -2.0], [0.15625, 3.0e10]], dtype=torch.bfloat16),
        "f64": torch.tensor([1e-300, -2.5], dtype=torch.float64),
        "i64": torch.tensor([-(2**40), 5], dtype=torch.int64),
        "i32": torch.tensor([[-7], [8]], dtype=torch.int32),
        "u8": torch.tensor([0, 200, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False]),
        "param": torch.nn.Parameter(torch.full((2, 2), 0.25)),
        "nested": {"list": [torch.ones(2), torch.zeros(1, 3)], "scalar": torch.tensor(3.5)},
        "empty": torch.zeros(0, 4),
        "epoch": 11,
        "args": argparse.Namespace(lr=0.1, name="fixture"),
    }
    torch.save(obj, path("views.pth"))
    entry = {}
    for name, t in [
        ("base", obj["base"]), ("transposed", obj["transposed"]), ("slice", obj["slice"]),
        ("row", obj["row"]), ("f16", obj["f16"]), ("bf16", obj["bf16"]), ("f64", obj["f64"]),
        ("i64", obj["i64"]), ("i32", obj["i32"]), ("u8", obj["u8"]), ("bool", obj["bool"]),
        ("param", obj["param"]), ("nested.list.0", obj["nested"]["list"][0]),
        ("nested.list.1", obj["nested"]["list"][1]), ("nested.scalar", obj["nested"]["scalar"]),
        ("empty", obj["empty"]),
    ]:
        entry[name] = tensor_entry(t)
    expected["views.pth"] = entry



def gen_torch_legacy():
    # Legacy (non-zip, torch < 1.6) format: consecutive pickles, then the raw storages.
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) - 2.5
    obj = {
        "base": base,
        "transposed": base.t(),  # non-contiguous view of the same storage
        "slice": base[1:, 1::2],  # storage offset + strides
        "f16": torch.tensor([0.5, -1.5, 1024.0, 6.1035156e-05], dtype=torch.float16),
        "f64": torch.tensor([[1e-300], [-2.5]], dtype=torch.float64),
        "i64": torch.tensor([-(2**40), 5, 0], dtype=torch.int64),
        "i32": torch.tensor([-7, 8], dtype=torch.int32),
        "u8": torch.tensor([0, 200, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "param": torch.nn.Parameter(torch.full((2, 2), 0.25)),
        "nested": {"inner": {"w": torch.linspace(-1, 1, 5)}, "list": [torch.ones(2, 1)]},
        "epoch": 3,
    }
    torch.save(obj, path("legacy.pth"), _use_new_zipfile_serialization=False)
    loaded = torch.load(path("legacy.pth"), weights_only=True)
    entry = {}
    for name, t in [
        ("base", loaded["base"]), ("transposed", loaded["transposed"]), ("slice", loaded["slice"]),
        ("f16", loaded["f16"]), ("f64", loaded["f64"]), ("i64", loaded["i64"]),
        ("i32", loaded["i32"]), ("u8", loaded["u8"]), ("bool", loaded["bool"]),
        ("param", loaded["param"]), ("nested.inner.w", loaded["nested"]["inner"]["w"]),
        ("nested.list.0", loaded["nested"]["list"][0]),
    ]:
        entry[name] = tensor_entry(t)
    expected["legacy.pth"] = entry


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 2, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(2, 1, 1)
        self.register_buffer("scale", torch.tensor([0.5, 2.0]))

    def forward(self, x):
        y = torch.relu(self.conv1(x)) * self.scale.view(1, 2, 1, 1)
        return self.conv2(y) + torch.tensor([0.125, -0.25]).sum()


def gen_torchscript():
    torch.manual_seed(1)
    net = TinyNet().eval()
    traced = torch.jit.trace(net, torch.zeros(1, 1, 4, 4))
    traced.save(path("tiny_script.pt"))
    entry = {}
    for name, t in net.state_dict().items():
        entry[name] = tensor_entry(t)
    expected["tiny_script.pt"] = {"tensors": entry}
    loaded = torch.jit.load(path("tiny_script.pt"))
    x = torch.linspace(-1, 1, 16).reshape(1, 1, 4, 4)
    expected["tiny_script.pt"]["forward_linspace"] = loaded(x).reshape(-1).tolist()


def gen_golden():
    if not os.path.exists(GOLDEN):
        print("skipping golden checkpoint expectations: %s not found" % GOLDEN, file=sys.stderr)
        return
    ckpt = torch.load(GOLDEN, map_location="cpu", weights_only=False)
    sd = ckpt["state_dict"]
    out = {
        "count": len(sd),
        "epoch": ckpt["epoch"],
        "args": vars(ckpt["args"]),
        "tensors": {name: tensor_entry(t) for name, t in sd.items()},
    }
    for v in out["tensors"].values():
        v.pop("values")
    with open(path("v2l_tiny_checkpoint_expected.json"), "w") as fh:
        json.dump(out, fh, indent=0, sort_keys=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    gen_npy()
    gen_pickles()
    gen_idx()
    gen_torch_save()
    gen_torch_legacy()
    gen_torchscript()
    gen_golden()
    expected["_versions"] = {"numpy": np.__version__, "torch": torch.__version__, "python": sys.version.split()[0]}
    with open(path("expected.json"), "w") as fh:
        json.dump(expected, fh, indent=1, sort_keys=True)
    total = sum(os.path.getsize(path(n)) for n in os.listdir(OUT))
    print("wrote %d files, %d bytes, to %s" % (len(os.listdir(OUT)), total, OUT))


if __name__ == "__main__":
    main()
