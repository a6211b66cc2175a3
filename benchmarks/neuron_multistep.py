"""Time the multi-step LIF neuron (forward + backward) of snnedu's functional reference path.

Run on demand (never in the test suite):

    python benchmarks/neuron_multistep.py [--device cuda] [--repeats 5] [--out benchmarks/results]

Sizes are the two CPU sizes of the speed issue: (T=64, B=16, N=4096) and (T=16, B=32, N=65536).
Writes ``<out>/neuron_multistep-<host>-<device>.json`` and ``.md`` with the machine's name, the
torch version, thread count and the median of ``repeats`` timings. Peers (SpikingJelly, snnTorch,
Norse) are compared by the dedicated benchmark of the speed issue; this script is the baseline.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

import snnedu

SIZES = [(64, 16, 4096), (16, 32, 65536)]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_lif(T, B, N, device, repeats):
    lif = snnedu.LIF(tau=2.0).to(device)
    x = torch.randn(T, B, N, device=device) * 1.5 + 0.5
    times = []
    for i in range(repeats + 1):  # first run is a warm-up
        xi = x.clone().requires_grad_(True)
        _sync(device)
        t0 = time.perf_counter()
        lif(xi).sum().backward()
        _sync(device)
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    rows = []
    for T, B, N in SIZES:
        t = time_lif(T, B, N, device, args.repeats)
        rows.append({"T": T, "B": B, "N": N, "median_s": t})
        print(f"LIF fwd+bwd T={T} B={B} N={N}: {t:.4f} s (median of {args.repeats})")
    result = {"benchmark": "neuron_multistep", "impl": "snnedu functional reference (per-step loop)",
              "host": platform.node(), "machine": machine, "device": str(device),
              "torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"neuron_multistep-{platform.node()}-{device.type}"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    md = [f"LIF multi-step forward+backward on {machine} ({device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads)", "", "| T | B | N | median s |", "|---|---|---|---|"]
    md += [f"| {r['T']} | {r['B']} | {r['N']} | {r['median_s']:.4f} |" for r in rows]
    (out / f"{stem}.md").write_text("\n".join(md) + "\n")
    print(f"wrote {out / stem}.json/.md")


if __name__ == "__main__":
    main()
