#!/usr/bin/env python3
"""Side-by-side benchmark of nearest-codeword search (argmin over squared L2).

For T queries z_i and K codebook rows c_j of dimension d (f32), every
implementation returns, for each query, argmin_j ||z_i - c_j||^2 (lowest index
on ties).  The Rust implementations (a separate binary, see --rust-bin) and the
Python ones (faiss-cpu, numpy, torch) all run in ONE invocation on the same
data, with the same thread count, so their ratios can be compared on a noisy
shared machine.

Outputs (in --work-dir, default ./bench-out):
  queries.f32, codebook.f32   raw little-endian f32, row-major [T,d] / [K,d]
  data.json                   recipe + sha256 of the two data files
  <impl>.i64                  argmin indices of each implementation, raw LE i64 [T]
  compare.md                  Markdown table + agreement + provenance (also printed)
  compare.jsonl               one JSON object per implementation + provenance/agreement

See benches/compare/README.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

# ---------------------------------------------------------------------------
# Command line.  Parsed before the numeric libraries are imported, because the
# thread-count environment variables must be set before they load.
# ---------------------------------------------------------------------------

RUST_CEILING = "sgemm (matrixmultiply, ceiling)"
RUST_BUILD_CMD = "cargo build --release -p v2l-quant --example quant_compare"
TIE_RTOL = 1e-5


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Nearest-codeword search (argmin squared L2): Rust vs faiss/numpy/torch, side by side.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--t", type=int, default=4096, help="number of queries T")
    p.add_argument("--k", type=int, default=32000, help="codebook rows K")
    p.add_argument("--d", type=int, default=768, help="dimension d")
    p.add_argument("--seed", type=int, default=0, help="numpy default_rng seed for the data")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per implementation (after 1 warm-up)")
    p.add_argument("--threads", type=int, default=default_threads(),
                   help="threads for every tool (BLAS, OpenMP, torch, faiss, rayon); default = nproc")
    p.add_argument("--block", type=int, default=512, help="query-block rows for the blocked rows")
    p.add_argument("--work-dir", default="bench-out", help="data, indices and reports go here")
    p.add_argument("--rust-bin", default=None,
                   help=f"path to the quant_compare example (build: {RUST_BUILD_CMD}); "
                        "omitted or missing -> Python implementations only")
    p.add_argument("--rust-timeout", type=float, default=3600.0, help="seconds before the Rust binary is killed")
    p.add_argument("--no-python", action="store_true", help="run only the Rust binary (still needs faiss for the reference if available)")
    p.add_argument("--only", default=None,
                   help="comma-separated substrings: run only Python impls whose name contains one of them")
    p.add_argument("--skip", default=None,
                   help="comma-separated substrings: skip Python impls whose name contains one of them")
    p.add_argument("--order", choices=["interleaved", "sequential"], default="interleaved",
                   help="Python timing order: 'interleaved' runs repeat r of every impl before repeat r+1 "
                        "(spreads machine drift over all impls); 'sequential' runs each impl's repeats back to back")
    a = p.parse_args(argv)
    if a.repeats < 1:
        p.error("--repeats must be >= 1")
    if a.threads < 1:
        p.error("--threads must be >= 1")
    return a


ARGS = parse_args() if __name__ == "__main__" else None

if ARGS is not None:
    # Same thread count for every runtime; set before numpy/torch/faiss load.
    for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "BLIS_NUM_THREADS", "RAYON_NUM_THREADS"):
        os.environ[_v] = str(ARGS.threads)

import numpy as np  # noqa: E402

try:  # optional tools: a missing one is reported, not fatal
    import torch  # noqa: E402
except Exception as e:  # pragma: no cover
    torch = None
    _TORCH_ERR = repr(e)
try:
    import faiss  # noqa: E402
except Exception as e:  # pragma: no cover
    faiss = None
    _FAISS_ERR = repr(e)
try:
    import threadpoolctl  # noqa: E402
except Exception as e:  # pragma: no cover
    threadpoolctl = None
    _TPC_ERR = repr(e)


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

DATA_RECIPE = (
    "rng = numpy.random.default_rng(seed); "
    "queries = rng.standard_normal((T, d), dtype=float32), then each row divided by its L2 norm "
    "(as V2L's local quantiser normalises z); "
    "codebook = rng.standard_normal((K, d), dtype=float32) * 0.05 + 0.01 (drawn after the queries)"
)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def make_data(T: int, K: int, d: int, seed: int, work: Path):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((T, d), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    c = rng.standard_normal((K, d), dtype=np.float32)
    c *= np.float32(0.05)
    c += np.float32(0.01)
    q = np.ascontiguousarray(q, dtype="<f4")
    c = np.ascontiguousarray(c, dtype="<f4")
    qp, cp = work / "queries.f32", work / "codebook.f32"
    q.tofile(qp)
    c.tofile(cp)
    meta = {
        "T": T, "K": K, "d": d, "seed": seed, "recipe": DATA_RECIPE,
        "queries": {"path": str(qp), "shape": [T, d], "dtype": "<f4", "sha256": sha256_file(qp)},
        "codebook": {"path": str(cp), "shape": [K, d], "dtype": "<f4", "sha256": sha256_file(cp)},
    }
    (work / "data.json").write_text(json.dumps(meta, indent=2) + "\n")
    return q, c, meta


# ---------------------------------------------------------------------------
# Python implementations.  Each has setup() (untimed: index build, ‖c‖²,
# output buffers), run() -> int64 indices [T] (timed), teardown().
# ‖c‖² is precomputed once per codebook for every impl (faiss: cached norms,
# where the installed version supports it).  ‖z‖² is a per-row constant and
# does not change the argmin, so the matmul rows minimise ‖c‖² − 2 z·c.
# ---------------------------------------------------------------------------


class Impl:
    name = "?"
    tool = "?"
    kind = "argmin"  # or "sgemm" (GEMM only: no argmin, indices not produced)
    note = ""

    def __init__(self, q, c, block):
        self.q, self.c, self.block = q, c, block

    def setup(self):
        pass

    def run(self):
        raise NotImplementedError

    def teardown(self):
        pass


class FaissFlat(Impl):
    name = "faiss IndexFlatL2.search(k=1)"
    tool = "faiss"
    note = "exact flat index; add() and norm caching untimed"

    def setup(self):
        self.index = faiss.IndexFlatL2(self.c.shape[1])
        self.index.add(self.c)
        self.cached_norms = False
        if hasattr(self.index, "sync_l2norms"):
            self.index.sync_l2norms()
            self.cached_norms = True
        self.note = ("exact flat index; add()" + (" + sync_l2norms()" if self.cached_norms else "")
                     + " untimed")

    def run(self):
        _, idx = self.index.search(self.q, 1)
        return idx[:, 0]

    def teardown(self):
        del self.index


class NumpyFull(Impl):
    name = "numpy matmul + argmin (full T×K)"
    tool = "numpy"
    note = "s = q @ c.T (fresh T×K array); s *= -2; s += ‖c‖²; s.argmin(1)"

    def setup(self):
        self.cT = self.c.T
        self.cn = np.einsum("ij,ij->i", self.c, self.c)

    def run(self):
        s = self.q @ self.cT
        s *= np.float32(-2.0)
        s += self.cn
        return s.argmin(axis=1)


class NumpyBlocked(Impl):
    name = "numpy matmul + argmin (blocked)"
    tool = "numpy"

    def setup(self):
        self.note = f"{self.block}-row query blocks, matmul into a reused buffer, then -2·s + ‖c‖², argmin"
        self.cT = self.c.T
        self.cn = np.einsum("ij,ij->i", self.c, self.c)
        self.buf = np.empty((self.block, self.c.shape[0]), dtype=np.float32)

    def run(self):
        T = self.q.shape[0]
        out = np.empty(T, dtype=np.int64)
        for i in range(0, T, self.block):
            qb = self.q[i:i + self.block]
            s = self.buf[: qb.shape[0]]
            np.matmul(qb, self.cT, out=s)
            s *= np.float32(-2.0)
            s += self.cn
            out[i:i + qb.shape[0]] = s.argmin(axis=1)
        return out

    def teardown(self):
        del self.buf


class NumpySgemm(Impl):
    name = "numpy SGEMM alone (q @ c.T)"
    tool = "numpy"
    kind = "sgemm"
    note = "matmul into a preallocated T×K buffer; no argmin"

    def setup(self):
        self.cT = self.c.T
        self.buf = np.empty((self.q.shape[0], self.c.shape[0]), dtype=np.float32)

    def run(self):
        np.matmul(self.q, self.cT, out=self.buf)
        return None

    def teardown(self):
        del self.buf


class TorchFull(Impl):
    name = "torch addmm + argmin (full T×K)"
    tool = "torch"
    note = "torch.addmm(‖c‖², q, c.T, alpha=-2) (fresh T×K tensor), argmin(1)"

    def setup(self):
        self.qt = torch.from_numpy(self.q)
        self.ct = torch.from_numpy(self.c)
        self.cn = (self.ct * self.ct).sum(1)

    def run(self):
        with torch.inference_mode():
            s = torch.addmm(self.cn, self.qt, self.ct.T, beta=1.0, alpha=-2.0)
            return s.argmin(dim=1).numpy()


class TorchBlocked(Impl):
    name = "torch addmm + argmin (blocked)"
    tool = "torch"

    def setup(self):
        self.note = f"{self.block}-row query blocks, addmm into a reused buffer, argmin"
        self.qt = torch.from_numpy(self.q)
        self.ct = torch.from_numpy(self.c)
        self.cn = (self.ct * self.ct).sum(1)
        self.buf = torch.empty((self.block, self.c.shape[0]), dtype=torch.float32)

    def run(self):
        T = self.q.shape[0]
        out = torch.empty(T, dtype=torch.int64)
        cT = self.ct.T
        with torch.inference_mode():
            for i in range(0, T, self.block):
                qb = self.qt[i:i + self.block]
                n = qb.shape[0]
                s = self.buf[:n]
                torch.addmm(self.cn, qb, cT, beta=1.0, alpha=-2.0, out=s)
                out[i:i + n] = s.argmin(dim=1)
        return out.numpy()

    def teardown(self):
        del self.buf


class TorchCdist(Impl):
    name = "torch cdist + argmin"
    tool = "torch"
    note = "torch.cdist(q, c) (default compute_mode: mm path, sqrt, full T×K), argmin(1)"

    def setup(self):
        self.qt = torch.from_numpy(self.q)
        self.ct = torch.from_numpy(self.c)

    def run(self):
        with torch.inference_mode():
            return torch.cdist(self.qt, self.ct).argmin(dim=1).numpy()


class TorchSgemm(Impl):
    name = "torch SGEMM alone (q @ c.T)"
    tool = "torch"
    kind = "sgemm"
    note = "torch.mm into a preallocated T×K tensor; no argmin"

    def setup(self):
        self.qt = torch.from_numpy(self.q)
        self.ct = torch.from_numpy(self.c)
        self.buf = torch.empty((self.q.shape[0], self.c.shape[0]), dtype=torch.float32)

    def run(self):
        with torch.inference_mode():
            torch.mm(self.qt, self.ct.T, out=self.buf)
        return None

    def teardown(self):
        del self.buf


def python_impls(args):
    impls = []
    if faiss is not None:
        impls.append(FaissFlat)
    impls += [NumpyFull, NumpyBlocked]
    if torch is not None:
        impls += [TorchFull, TorchBlocked, TorchCdist]
    impls += [NumpySgemm]
    if torch is not None:
        impls += [TorchSgemm]

    def sel(names):
        return [s.strip().lower() for s in names.split(",") if s.strip()] if names else None

    only, skip = sel(args.only), sel(args.skip)
    out = []
    for cls in impls:
        n = cls.name.lower()
        if only and not any(s in n for s in only):
            continue
        if skip and any(s in n for s in skip):
            continue
        out.append(cls)
    return out


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def time_python(classes, q, c, args, work: Path, log):
    """Returns list of result dicts (timings + indices path)."""
    objs = [cls(q, c, args.block) for cls in classes]
    times = {o.name: [] for o in objs}
    indices = {}

    def one(o, timed):
        t0 = time.perf_counter()
        r = o.run()
        dt = time.perf_counter() - t0
        if timed:
            times[o.name].append(dt)
        elif r is not None:
            indices[o.name] = np.ascontiguousarray(np.asarray(r), dtype="<i8")
        return dt

    if args.order == "sequential":
        for o in objs:
            o.setup()
            dt = one(o, False)
            log(f"  {o.name}: warm-up {dt:.3f}s")
            for _ in range(args.repeats):
                one(o, True)
            log(f"  {o.name}: median {statistics.median(times[o.name]):.3f}s")
            o.teardown()
            gc.collect()
    else:
        for o in objs:
            o.setup()
        for o in objs:
            dt = one(o, False)
            log(f"  warm-up {o.name}: {dt:.3f}s")
            gc.collect()
        for r in range(args.repeats):
            line = []
            for o in objs:
                dt = one(o, True)
                line.append(f"{dt:.3f}")
                gc.collect()
            log(f"  repeat {r + 1}/{args.repeats}: " + " ".join(line))
        for o in objs:
            o.teardown()
        gc.collect()

    results = []
    for o in objs:
        ts = times[o.name]
        res = {
            "impl": o.name, "source": "python", "tool": o.tool, "kind": o.kind, "note": o.note,
            "median_s": statistics.median(ts), "min_s": min(ts), "max_s": max(ts), "times_s": ts,
            "threads": args.threads,
        }
        if o.name in indices:
            p = work / f"py_{slug(o.name)}.i64"
            indices[o.name].tofile(p)
            res["indices"] = str(p)
        results.append(res)
    return results


# ---------------------------------------------------------------------------
# Rust binary
# ---------------------------------------------------------------------------


def run_rust(args, work: Path, log):
    if not args.rust_bin:
        msg = (f"Rust binary not given (--rust-bin): Rust rows skipped. "
               f"Build it with `{RUST_BUILD_CMD}` and pass --rust-bin target/release/examples/quant_compare.")
        log("NOTE: " + msg)
        return [], {"status": "skipped", "message": msg}
    binp = Path(args.rust_bin)
    if not (binp.is_file() and os.access(binp, os.X_OK)):
        msg = (f"Rust binary not found or not executable at {binp}: Rust rows skipped. "
               f"Build it with `{RUST_BUILD_CMD}`.")
        log("NOTE: " + msg)
        return [], {"status": "missing", "message": msg, "path": str(binp)}
    rust_out = work / "rust"
    rust_out.mkdir(parents=True, exist_ok=True)
    cmd = [str(binp), "--queries", str(work / "queries.f32"), "--codebook", str(work / "codebook.f32"),
           "--t", str(args.t), "--k", str(args.k), "--d", str(args.d),
           "--repeats", str(args.repeats), "--out-dir", str(rust_out)]
    log("  $ " + " ".join(cmd))
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    t0 = time.perf_counter()
    try:
        cp = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, timeout=args.rust_timeout)
    except subprocess.TimeoutExpired:
        msg = f"Rust binary timed out after {args.rust_timeout}s"
        log("ERROR: " + msg)
        return [], {"status": "timeout", "message": msg, "cmd": cmd}
    wall = time.perf_counter() - t0
    info = {"status": "ok" if cp.returncode == 0 else "failed", "cmd": cmd, "returncode": cp.returncode,
            "wall_s": wall, "stderr_tail": cp.stderr[-2000:]}
    results = []
    for line in cp.stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            log(f"  (ignoring non-JSON line from Rust: {line[:120]})")
            continue
        if "impl" not in obj or "median_s" not in obj:
            continue
        res = dict(obj)
        res["source"] = "rust"
        res["tool"] = "rust"
        res["kind"] = "sgemm" if "sgemm" in obj["impl"].lower() else "argmin"
        res.setdefault("min_s", obj["median_s"])
        res.setdefault("max_s", obj["median_s"])
        if "gflops" in obj:
            res["gflops_reported"] = obj["gflops"]
        results.append(res)
    if cp.returncode != 0:
        log(f"ERROR: Rust binary exited {cp.returncode}; stderr tail:\n{cp.stderr[-2000:]}")
    for r in results:
        th = r.get("threads")
        if th is not None and th != args.threads:
            log(f"WARNING: Rust impl '{r['impl']}' reports threads={th}, requested {args.threads}")
    log(f"  Rust: {len(results)} implementation(s) in {wall:.1f}s")
    return results, info


# ---------------------------------------------------------------------------
# Agreement
# ---------------------------------------------------------------------------


def exact_sqdist(q, c, rows, cols):
    """Exact ||q_r - c_j||^2 in float64 by explicit differences (no GEMM expansion)."""
    diff = q[rows].astype(np.float64) - c[cols].astype(np.float64)
    return np.einsum("ij,ij->i", diff, diff)


def compare_indices(a, b, q, c):
    """Returns dict: n_diff, n_nontie, max_rel_gap among diffs, and which side is closer on non-ties."""
    rows = np.nonzero(a != b)[0]
    out = {"n_diff": int(rows.size), "n_nontie": 0, "max_rel_gap": 0.0, "a_closer": 0, "b_closer": 0}
    if rows.size == 0:
        return out
    da = exact_sqdist(q, c, rows, a[rows])
    db = exact_sqdist(q, c, rows, b[rows])
    gap = np.abs(da - db)
    rel = gap / np.maximum(np.maximum(np.abs(da), np.abs(db)), np.finfo(np.float64).tiny)
    nontie = rel > TIE_RTOL
    out["n_nontie"] = int(nontie.sum())
    out["max_rel_gap"] = float(rel.max())
    out["a_closer"] = int((nontie & (da < db)).sum())
    out["b_closer"] = int((nontie & (db < da)).sum())
    return out


def agreement(results, q, c, log):
    T = q.shape[0]
    K = c.shape[0]
    idx = {}
    for r in results:
        p = r.get("indices")
        if r["kind"] == "sgemm" or not p:
            continue
        if not Path(p).is_file():
            r["agreement_error"] = f"indices file missing: {p}"
            continue
        arr = np.fromfile(p, dtype="<i8")
        if arr.shape != (T,):
            r["agreement_error"] = f"indices file has {arr.size} entries, expected {T}"
            continue
        if arr.min() < 0 or arr.max() >= K:
            r["agreement_error"] = f"indices out of range [0,{K})"
            continue
        idx[r["impl"]] = arr
    names = list(idx)
    ref = next((n for n in names if n.startswith("faiss")), names[0] if names else None)
    if ref is None:
        return None, {}
    pair = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pair[(a, b)] = compare_indices(idx[a], idx[b], q, c)
    for r in results:
        n = r["impl"]
        if n not in idx:
            continue
        if n == ref:
            r["vs_ref"] = {"n_diff": 0, "n_nontie": 0}
            continue
        cmp = pair.get((n, ref)) or pair.get((ref, n))
        r["vs_ref"] = {
            "ref": ref, "n_diff": cmp["n_diff"], "n_nontie": cmp["n_nontie"], "max_rel_gap": cmp["max_rel_gap"],
        }
        if (n, ref) in pair:
            r["vs_ref"]["impl_closer"], r["vs_ref"]["ref_closer"] = cmp["a_closer"], cmp["b_closer"]
        else:
            r["vs_ref"]["impl_closer"], r["vs_ref"]["ref_closer"] = cmp["b_closer"], cmp["a_closer"]
    return ref, pair


def diff_text(v):
    if v is None:
        return "—"
    if v["n_diff"] == 0:
        return "0"
    if v["n_nontie"] == 0:
        return f"{v['n_diff']} (all ties)"
    return f"{v['n_diff']} ({v['n_nontie']} not ties)"


# ---------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------


def sh(cmd):
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=10).stdout
    except Exception:
        return ""


def cpu_snapshot():
    """(wall, busy CPU-seconds of the whole machine, steal CPU-seconds, CPU-seconds of this process
    and its finished children) — the difference of two snapshots shows how much *other* work ran."""
    import resource
    busy = steal = None
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        hz = os.sysconf("SC_CLK_TCK")
        # user nice system idle iowait irq softirq steal ...
        busy = (v[0] + v[1] + v[2] + v[5] + v[6]) / hz
        steal = (v[7] if len(v) > 7 else 0) / hz
    except Exception:
        pass
    own = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        own += ru.ru_utime + ru.ru_stime
    return time.perf_counter(), busy, steal, own


def other_load(a, b):
    wall = b[0] - a[0]
    if a[1] is None or b[1] is None or wall <= 0:
        return None
    other = max(0.0, (b[1] - a[1]) - (b[3] - a[3]))
    return {"wall_s": wall, "other_cpu_s": other, "other_cores_avg": other / wall,
            "steal_cpu_s": b[2] - a[2], "own_cpu_s": b[3] - a[3]}


def machine_info(args):
    lscpu = sh(["lscpu"])
    model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in lscpu.splitlines() if ln.startswith("Flags")), [])
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile") if f in flags]
    try:
        la = os.getloadavg()
    except OSError:
        la = None
    return {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": model,
        "nproc": sh(["nproc"]).strip() or str(default_threads()),
        "simd_flags": simd,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "loadavg_start": la,
        "mem_total": next((ln.split(":", 1)[1].strip() for ln in open("/proc/meminfo") if ln.startswith("MemTotal")), "?")
        if os.path.exists("/proc/meminfo") else "?",
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS",
                                                "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS",
                                                "MKL_ENABLE_INSTRUCTIONS", "MKL_DEBUG_CPU_TYPE")},
    }


def tool_info(args):
    info = {"requested_threads": args.threads}
    limits_applied = None
    if threadpoolctl is not None:
        # Make every loaded BLAS / OpenMP pool use the requested thread count.
        limits_applied = threadpoolctl.threadpool_limits(limits=args.threads)
        tp = threadpoolctl.threadpool_info()
        info["threadpoolctl_version"] = threadpoolctl.__version__
        info["threadpools"] = [
            {k: m.get(k) for k in ("user_api", "internal_api", "prefix", "version", "architecture",
                                   "threading_layer", "num_threads", "filepath")}
            for m in tp
        ]
    else:
        info["threadpoolctl_error"] = _TPC_ERR
    info["numpy"] = {"version": np.__version__}
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info["numpy"]["build_blas"] = {k: blas.get(k) for k in ("name", "version", "openblas configuration")}
        simd = cfg.get("SIMD Extensions", {})
        info["numpy"]["simd_found"] = simd.get("found")
    except Exception as e:
        info["numpy"]["config_error"] = repr(e)
    if torch is not None:
        torch.set_num_threads(args.threads)
        tcfg = torch.__config__.show()
        blas = re.search(r"BLAS_INFO=([^,\s]+)", tcfg)
        lapack = re.search(r"LAPACK_INFO=([^,\s]+)", tcfg)
        cap = None
        try:
            cap = torch.backends.cpu.get_cpu_capability()
        except Exception:
            m = re.search(r"CPU capability usage: (\S+)", tcfg)
            cap = m.group(1) if m else None
        info["torch"] = {
            "version": torch.__version__,
            "blas_info": blas.group(1) if blas else None,
            "lapack_info": lapack.group(1) if lapack else None,
            "mkl_available": bool(torch.backends.mkl.is_available()),
            "mkldnn_available": bool(torch.backends.mkldnn.is_available()),
            "cpu_capability": cap,
            "num_threads": torch.get_num_threads(),
            "num_interop_threads": torch.get_num_interop_threads(),
            "parallel_info": torch.__config__.parallel_info().strip(),
        }
    else:
        info["torch"] = {"error": _TORCH_ERR}
    if faiss is not None:
        faiss.omp_set_num_threads(args.threads)
        fi = {"version": getattr(faiss, "__version__", "?"), "omp_max_threads": faiss.omp_get_max_threads()}
        if hasattr(faiss, "get_compile_options"):
            try:
                fi["compile_options"] = faiss.get_compile_options()
            except Exception:
                pass
        try:
            fi["distance_compute_blas_threshold"] = int(faiss.cvar.distance_compute_blas_threshold)
            fi["distance_compute_blas_query_bs"] = int(faiss.cvar.distance_compute_blas_query_bs)
            fi["distance_compute_blas_database_bs"] = int(faiss.cvar.distance_compute_blas_database_bs)
        except Exception:
            pass
        info["faiss"] = fi
    else:
        info["faiss"] = {"error": _FAISS_ERR}
    return info, limits_applied


def blas_summary(tools):
    """One line per library that threadpoolctl found, attributed to its package by file path."""
    lines = []
    for m in tools.get("threadpools", []):
        fp = m.get("filepath") or ""
        owner = "?"
        for key, name in (("numpy", "numpy"), ("torch", "torch"), ("faiss", "faiss"), ("scipy", "scipy")):
            if f"/{key}" in fp or f"{key}." in os.path.basename(fp) or f"{key}_" in fp:
                owner = name
                break
        arch = m.get("architecture")
        lines.append(
            f"- {owner}: {m.get('internal_api')} {m.get('version') or ''}"
            f"{(' kernel ' + arch) if arch else ''}"
            f"{(' threading ' + m['threading_layer']) if m.get('threading_layer') else ''}"
            f", num_threads={m.get('num_threads')} — `{fp}`"
        )
    return lines


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def fmt_la(la):
    return "/".join(f"{x:.2f}" for x in la) if la else "?"


def fmt_s(x):
    return f"{x:.3f}" if x >= 0.1 else f"{x * 1e3:.1f} ms" if x < 0.01 else f"{x:.4f}"


def build_report(args, data_meta, results, ref, pair, machine, tools, rust_info, flop, ceiling):
    L = []
    L.append(f"# Nearest-codeword search: T={args.t}, K={args.k}, d={args.d}, f32")
    L.append("")
    L.append(f"{machine['date_utc']} · {machine['cpu_model']} · nproc {machine['nproc']} · "
             f"SIMD {','.join(machine['simd_flags']) or '?'} · threads {args.threads} · "
             f"repeats {args.repeats} (+1 warm-up) · order {args.order}")
    L.append("")
    L.append(f"Work per search: 2·T·K·d = {flop / 1e9:.1f} GFLOP. GFLOP/s = that / median seconds. ")
    if ceiling:
        L.append(f"% of ceiling = GFLOP/s ÷ GFLOP/s of **{ceiling['impl']}** ({ceiling['gflops']:.0f})"
                 f"{'' if ceiling['impl'] == RUST_CEILING else ' — the Rust row is absent, so the fastest SGEMM-only row stands in'}. "
                 "× faiss = faiss median ÷ row median (>1 = faster than faiss).")
    L.append("")
    L.append("| impl | median s | min–max s | GFLOP/s | % of SGEMM ceiling | × faiss | differing indices vs "
             + (f"{ref.split(' ')[0]}" if ref else "ref") + " |")
    L.append("|---|---:|---:|---:|---:|---:|---|")
    faiss_row = next((r for r in results if r["impl"].startswith("faiss")), None)
    for r in results:
        g = r["gflops"]
        pct = f"{100 * g / ceiling['gflops']:.0f} %" if ceiling else "—"
        xf = f"{faiss_row['median_s'] / r['median_s']:.2f}×" if faiss_row else "—"
        if r["kind"] == "sgemm":
            dt = "n/a (GEMM only)"
        elif "agreement_error" in r:
            dt = "ERROR: " + r["agreement_error"]
        elif r["impl"] == ref:
            dt = "reference"
        else:
            dt = diff_text(r.get("vs_ref"))
        src = "rust" if r["source"] == "rust" else "py"
        L.append(f"| [{src}] {r['impl']} | {fmt_s(r['median_s'])} | {fmt_s(r['min_s'])}–{fmt_s(r['max_s'])} "
                 f"| {g:.1f} | {pct} | {xf} | {dt} |")
    L.append("")
    # Agreement
    L.append("## Agreement")
    L.append("")
    if ref is None:
        L.append("No implementation produced indices.")
    else:
        tot = sum(v["n_diff"] for v in pair.values())
        nont = sum(v["n_nontie"] for v in pair.values())
        L.append(f"Reference: {ref}. Every pair of index vectors compared; for each differing row the two chosen "
                 f"codewords' distances are recomputed exactly in float64 (explicit differences). "
                 f"A difference is a *tie* if the two distances agree within {TIE_RTOL:g} relative.")
        L.append("")
        if tot == 0:
            L.append(f"**All {len(set(n for p in pair for n in p)) or 1} index vectors are identical** "
                     f"(T = {args.t}).")
        elif nont == 0:
            L.append(f"**All differences are ties within {TIE_RTOL:g} relative** "
                     f"({tot} differing row-pairs in total over all pairs).")
        else:
            L.append(f"**{nont} differing row-pairs are NOT ties** (of {tot} differing row-pairs over all pairs).")
        L.append("")
        differing = {k: v for k, v in pair.items() if v["n_diff"]}
        if differing:
            L.append("Pairs with differences (all other pairs are identical; "
                     "'closer' counts non-tie rows where a's / b's codeword is exactly closer):")
            L.append("")
            L.append("| a ↔ b | differing | not ties | max rel. gap | closer a / b |")
            L.append("|---|---:|---:|---:|---|")
            for (a, b), v in differing.items():
                L.append(f"| {a} ↔ {b} | {v['n_diff']} | {v['n_nontie']} | {v['max_rel_gap']:.2e} | "
                         f"{v['a_closer']} / {v['b_closer']} |")
            L.append("")
    # Provenance
    L.append("## Provenance")
    L.append("")
    L.append(f"- machine: {machine['cpu_model']}, nproc {machine['nproc']}, {machine['mem_total']}, "
             f"kernel {machine['kernel']}, Python {machine['python']}, load average (1/5/15 min) at start "
             f"{fmt_la(machine['loadavg_start'])}, at end {fmt_la(machine.get('loadavg_end'))}")
    ol = machine.get("other_load")
    if ol:
        L.append(f"- other work on the machine during this run: {ol['other_cpu_s']:.0f} CPU-s of other processes "
                 f"over {ol['wall_s']:.0f} s (≈ {ol['other_cores_avg']:.2f} of {machine['nproc']} cores busy with "
                 f"something else; this process used {ol['own_cpu_s']:.0f} CPU-s), hypervisor steal "
                 f"{ol['steal_cpu_s']:.1f} CPU-s" + (" — **noisy run: compare ratios only, or re-run**"
                                                      if ol['other_cores_avg'] > 0.25 else ""))
    env = machine["env"]
    L.append(f"- environment: " + ", ".join(f"{k}={v if v is not None else '(unset)'}" for k, v in env.items()))
    L.append(f"- data: {data_meta['recipe']}; seed {data_meta['seed']}; "
             f"queries sha256 {data_meta['queries']['sha256'][:16]}…, codebook sha256 {data_meta['codebook']['sha256'][:16]}…")
    L.append("- BLAS / OpenMP libraries loaded in the Python process (threadpoolctl "
             f"{tools.get('threadpoolctl_version', '?')}, after threadpool_limits({args.threads})):")
    L.extend("  " + x for x in blas_summary(tools))
    npi = tools.get("numpy", {})
    L.append(f"- numpy {npi.get('version')}: built against {npi.get('build_blas')}")
    ti = tools.get("torch", {})
    if "version" in ti:
        L.append(f"- torch {ti['version']}: BLAS_INFO={ti['blas_info']}, LAPACK_INFO={ti['lapack_info']}, "
                 f"MKL available={ti['mkl_available']}, oneDNN available={ti['mkldnn_available']}, "
                 f"CPU capability={ti['cpu_capability']}, get_num_threads()={ti['num_threads']}, "
                 f"interop threads={ti['num_interop_threads']}")
        pi = "; ".join(ln.strip() for ln in ti["parallel_info"].splitlines() if ln.strip()
                       and not ln.strip().startswith("-"))
        L.append(f"  - parallel_info: {pi}")
    else:
        L.append(f"- torch: not available ({ti.get('error')})")
    fi = tools.get("faiss", {})
    if "version" in fi:
        L.append(f"- faiss {fi['version']}: omp_get_max_threads()={fi['omp_max_threads']}"
                 + (f", compile options: {fi['compile_options']}" if fi.get("compile_options") else "")
                 + (f", distance_compute_blas_threshold={fi['distance_compute_blas_threshold']} "
                    f"(faiss 1.15 takes the BLAS path when nq·d ≥ it: here nq·d = {args.t * args.d}; "
                    f"query block {fi.get('distance_compute_blas_query_bs')}, "
                    f"database block {fi.get('distance_compute_blas_database_bs')})"
                    if "distance_compute_blas_threshold" in fi else ""))
    else:
        L.append(f"- faiss: not available ({fi.get('error')})")
    L.append(f"- Rust: {rust_info.get('status')}"
             + (f" — {rust_info['message']}" if rust_info.get("message") else "")
             + (f" — `{' '.join(rust_info['cmd'])}` (RAYON_NUM_THREADS={args.threads}), exit {rust_info.get('returncode')}"
                if rust_info.get("cmd") else ""))
    L.append("- row notes:")
    for r in results:
        extra = r.get("note") or ""
        if r["source"] == "rust":
            extra = ", ".join(f"{k}={r[k]}" for k in ("threads",) if k in r) + (
                f", reported gflops={r['gflops_reported']}" if "gflops_reported" in r else "")
        ts = r.get("times_s")
        L.append(f"  - {r['impl']}: {extra}" + (f"; times {', '.join(f'{t:.3f}' for t in ts)}" if ts else ""))
    L.append("")
    return "\n".join(L)


# ---------------------------------------------------------------------------


def main(args):
    t_start = time.perf_counter()
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    snap0 = cpu_snapshot()
    machine = machine_info(args)
    tools, _limits = tool_info(args)  # also applies the thread limits
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if os.environ.get(k):
            log(f"WARNING: {k}={os.environ[k]} is set: it can force a slower OpenBLAS kernel. "
                f"Run through benches/compare/run.sh (it unsets it for the benchmark).")
    if faiss is None:
        log(f"WARNING: faiss not importable ({_FAISS_ERR}); agreement uses the first impl as reference")
    if torch is None:
        log(f"WARNING: torch not importable ({_TORCH_ERR}); torch rows skipped")

    log(f"[data] T={args.t} K={args.k} d={args.d} seed={args.seed} -> {work}")
    q, c, data_meta = make_data(args.t, args.k, args.d, args.seed, work)
    flop = 2.0 * args.t * args.k * args.d

    log("[rust]")
    rust_results, rust_info = run_rust(args, work, log)

    py_results = []
    if not args.no_python:
        classes = python_impls(args)
        log(f"[python] {len(classes)} impls, threads={args.threads}, repeats={args.repeats}, order={args.order}")
        py_results = time_python(classes, q, c, args, work, log)

    results = rust_results + py_results
    if not results:
        log("ERROR: nothing was measured")
        return 2
    for r in results:
        r["gflops"] = flop / r["median_s"] / 1e9
        r["gflop_per_search"] = flop / 1e9

    log("[agreement]")
    ref, pair = agreement(results, q, c, log)

    ceiling = next((r for r in results if r["impl"] == RUST_CEILING), None)
    if ceiling is None:
        sg = [r for r in results if r["kind"] == "sgemm"]
        ceiling = max(sg, key=lambda r: r["gflops"]) if sg else None
    faiss_row = next((r for r in results if r["impl"].startswith("faiss")), None)
    for r in results:
        r["pct_of_ceiling"] = 100 * r["gflops"] / ceiling["gflops"] if ceiling else None
        r["ceiling_impl"] = ceiling["impl"] if ceiling else None
        r["x_faiss"] = faiss_row["median_s"] / r["median_s"] if faiss_row else None

    try:
        machine["loadavg_end"] = os.getloadavg()
    except OSError:
        machine["loadavg_end"] = None
    machine["other_load"] = other_load(snap0, cpu_snapshot())
    md = build_report(args, data_meta, results, ref, pair, machine, tools, rust_info, flop, ceiling)
    (work / "compare.md").write_text(md)
    common = {"T": args.t, "K": args.k, "d": args.d, "repeats": args.repeats, "date_utc": machine["date_utc"]}
    with open(work / "compare.jsonl", "w") as f:
        for r in results:
            f.write(json.dumps({**common, "type": "result", **r}) + "\n")
        f.write(json.dumps({**common, "type": "agreement", "reference": ref,
                            "pairs": [{"a": a, "b": b, **v} for (a, b), v in pair.items()]}) + "\n")
        f.write(json.dumps({**common, "type": "provenance", "machine": machine, "tools": tools,
                            "data": data_meta, "rust": rust_info, "args": vars(args),
                            "total_wall_s": time.perf_counter() - t_start}) + "\n")
    print(md)
    log(f"[done] {work / 'compare.md'}, {work / 'compare.jsonl'} ({time.perf_counter() - t_start:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
