"""Command line: ``python -m snnedu train CONFIG`` (and ``check CONFIG``).

    python -m snnedu train configs/mlf_dsresnet20_cifar10.yaml            # the paper setting
    python -m snnedu train configs/plif_mnist.yaml --epochs 1 --max-batches 5 --device cpu
    python -m snnedu check configs/*.yaml                                   # validate only

A run writes ``OUT/NAME/checkpoint.pt`` after every epoch (a rerun resumes from it), TensorBoard logs
in ``OUT/NAME/tb`` and ``OUT/NAME/result.json``. A bad config stops with one line naming the field
and exit status 2.
"""
from __future__ import annotations

import argparse
import json
import sys

from .config import ConfigError, load_config, run_config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snnedu", description="snnedu experiments")
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train one experiment config")
    tr.add_argument("config", help="YAML config file (see configs/)")
    tr.add_argument("--out", default="runs", help="output folder (default: runs/)")
    tr.add_argument("--epochs", type=int, help="override train.epochs")
    tr.add_argument("--max-batches", type=int, help="cut every epoch to this many batches (smoke tests)")
    tr.add_argument("--batch-size", type=int, help="override data.batch_size and data.test_batch_size")
    tr.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: CUDA when present)")
    tr.add_argument("--no-resume", action="store_true", help="start afresh even if a checkpoint exists")
    tr.add_argument("--no-progress", action="store_true", help="no progress bars")
    ck = sub.add_parser("check", help="validate config files without training")
    ck.add_argument("configs", nargs="+")
    args = parser.parse_args(argv)

    if args.command == "check":
        status = 0
        for path in args.configs:
            try:
                cfg = load_config(path)
                print(f"{path}: ok ({cfg['name']})")
            except ConfigError as e:
                print(f"snnedu: config error in {path}: {e}", file=sys.stderr)
                status = 2
        return status

    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        print(f"snnedu: config error in {args.config}: {e}", file=sys.stderr)
        return 2
    for flag, value in (("--epochs", args.epochs), ("--max-batches", args.max_batches),
                        ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            print(f"snnedu: {flag} must be >= 1, got {value}", file=sys.stderr)
            return 2
    if args.batch_size:
        cfg["data"]["batch_size"] = cfg["data"]["test_batch_size"] = args.batch_size
    result = run_config(cfg, args.out, epochs=args.epochs, max_batches=args.max_batches, device=args.device,
                        progress=not args.no_progress, resume=not args.no_resume)
    summary = {k: result[k] for k in ("name", "final_test_acc", "best_test_acc", "epochs", "device", "data",
                                      "wall_time_s_this_run")}
    print(json.dumps(summary, indent=2))
    print(f"snnedu: result written to {args.out}/{cfg['name']}/result.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
