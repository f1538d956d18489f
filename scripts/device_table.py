#!/usr/bin/env python3
"""The device check's Markdown table from its JSON lines
(scripts/device_check.sh): quantiser rows with ms and GFLOP/s per method and
the ratios the GPU issue targets (our kernel vs torch matmul+argmin, vs
burn's f32 matmul), then tokenizer images/s and decoder tokens/s.

    python3 scripts/device_table.py machine.txt bench.jsonl
"""
import json
import sys


def main():
    machine = open(sys.argv[1]).read().strip().splitlines()
    rows = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")]
    print(f"Device check, {machine[0]} — {'; '.join(machine[1:])}\n")
    quant = [r for r in rows if r.get("phase") == "quant"]
    if quant:
        print("| T | K | d | method | ms | GFLOP/s |")
        print("|---|---|---|---|---|---|")
        for r in quant:
            print(f"| {r['t']} | {r['k']} | {r['d']} | {r['backend']} {r['method']} | {r['ms']} | {r['gflops']} |")
        print()
        for k in sorted({r["k"] for r in quant}):
            by = {r["method"]: r for r in quant if r["k"] == k}
            ours = by.get("v2l_kernel")
            if not ours:
                continue
            for base in ("torch_matmul_argmin", "burn_matmul"):
                if base in by:
                    ratio = ours["gflops"] / by[base]["gflops"]
                    print(f"- K = {k}: our kernel / {base} = {ratio:.2f}×")
        print()
    tok = [r for r in rows if r.get("phase") in ("encode", "decode")]
    if tok:
        print("| phase | batch | images/s |")
        print("|---|---|---|")
        for r in tok:
            print(f"| {r['backend']} {r['phase']} | {r['batch']} | {r['images_per_s']} |")
        print()
    for r in (r for r in rows if r.get("phase") == "llm"):
        print(f"- {r['backend']} {r['shape']} (random weights): prefill {r['prefill_tok_per_s']} tokens/s, "
              f"decode {r['decode_tok_per_s']} tokens/s")


if __name__ == "__main__":
    main()
