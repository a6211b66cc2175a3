"""Command line: ``python -m snnedu train CONFIG`` (and ``check CONFIG``).

    python -m snnedu train configs/mlf_dsresnet20_cifar10.yaml            # the paper setting
    python -m snnedu train configs/plif_mnist.yaml --epochs 1 --max-batches 5 --device cpu
    python -m snnedu check configs/*.yaml                                   # validate only
    python -m snnedu preprocess dvs128-gesture --root DIR --T 20 --split-by number
    python -m snnedu preprocess cifar10-dvs --root DIR --T 10 --size 48

A run writes ``OUT/NAME/checkpoint.pt`` after every epoch (a rerun resumes from it), TensorBoard logs
in ``OUT/NAME/tb`` and ``OUT/NAME/result.json``. A bad config stops with one line naming the field
and exit status 2; so does an operating-system error (a full disk, a directory or unreadable file
where a file is expected), naming the path and the cause. Files are written to a temporary and
renamed, so a failed write never damages what an earlier run wrote. ``preprocess`` integrates the recordings under ``--root`` into the HDF5 frame cache
(both splits); an interrupted run resumes without redoing finished samples.
"""
from __future__ import annotations

import argparse
import json
import sys

from .config import SCHEMA, ConfigError, load_config, run_config


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["benchmark"]:          # every further argument belongs to benchmarks/run.py
        return _benchmark(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m snnedu", description="snnedu: train paper configs, preprocess DVS data, benchmark.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train one experiment config")
    tr.add_argument("config", help="YAML config file (see configs/)")
    tr.add_argument("--out", default="runs", help="output folder (default: runs/)")
    tr.add_argument("--epochs", type=int, help="override train.epochs")
    tr.add_argument("--max-batches", type=int, help="cut every epoch to this many batches (smoke tests)")
    tr.add_argument("--batch-size", type=int, help="override data.batch_size and data.test_batch_size")
    tr.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: CUDA when present)")
    tr.add_argument("--no-resume", "--force", dest="no_resume", action="store_true",
                    help="start afresh even if a checkpoint exists (needed when the config changed since "
                         "the checkpoint was written; the old checkpoint is replaced)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bars")
    st = sub.add_parser("study", help="run a multi-seed study (variants x seeds), resumable per cell",
                        description="Run every unfinished cell of a study file and write "
                                    "OUT/NAME.json; --check only says whether stored results are stale.")
    st.add_argument("studies", nargs="+", help="study YAML file(s) (see studies/)")
    st.add_argument("--out", default="results/studies", help="folder of the results (default: results/studies)")
    st.add_argument("--jobs", type=int, default=1, help="cells trained at once, one process each (default 1)")
    st.add_argument("--only", action="append", help="run only this variant label (repeatable)")
    st.add_argument("--check", action="store_true", help="fail (exit 1) when a stored result is stale")
    st.add_argument("--no-progress", action="store_true", help="no progress bar")
    ck = sub.add_parser("check", help="validate config files without training")
    ck.add_argument("configs", nargs="+")
    pp = sub.add_parser("preprocess", help="integrate DVS recordings into the cached frames")
    pp.add_argument("dataset", choices=("dvs128-gesture", "cifar10-dvs"))
    pp.add_argument("--root", required=True, help="folder with the original recordings")
    pp.add_argument("--T", type=int, required=True, help="frames per sample")
    pp.add_argument("--split-by", default="number", choices=("number", "time", "duration"))
    pp.add_argument("--size", type=int, help="output height = width (default: the 128x128 sensor)")
    pp.add_argument("--normalization", help="max, max_frame, sum, norm, frequency (default: raw counts)")
    pp.add_argument("--duration-us", type=int, help="window length for --split-by duration")
    pp.add_argument("--cache-dir", help="where the .h5 caches go (default: $SNNEDU_DATA/frame_cache)")
    pp.add_argument("--split", choices=("train", "test", "both"), default="both")
    pp.add_argument("--rebuild", action="store_true", help="discard an existing cache first")
    pp.add_argument("--no-progress", action="store_true", help="no progress bar")
    bm = sub.add_parser("benchmark", help="time snnedu against SpikingJelly, snnTorch, Norse (in a clone of the "
                                          "repository, like `make bench`)")
    bm.add_argument("args", nargs="*", help="arguments of benchmarks/run.py, e.g. --quick (see its --help)")
    args = parser.parse_args(argv)
    command = {"preprocess": _preprocess, "study": _study, "check": _check, "train": _train,
               "benchmark": lambda a: _benchmark(a.args)}[args.command]
    try:
        return command(args)
    except OSError as e:  # a full disk, a directory given as a file, no permission: one line, exit 2
        from ._io import describe_os_error

        print(f"snnedu: {describe_os_error(e)}", file=sys.stderr)
        return 2


def _check(args) -> int:
    status = 0
    for path in args.configs:
        try:
            cfg = load_config(path)
            print(f"{path}: ok ({cfg['name']})")
        except ConfigError as e:
            print(f"snnedu: config error in {path}: {e}", file=sys.stderr)
            status = 2
    return status


def _train(args) -> int:
    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        print(f"snnedu: config error in {args.config}: {e}", file=sys.stderr)
        return 2
    for flag, value, high in (("--epochs", args.epochs, SCHEMA["train"]["epochs"].high),
                              ("--max-batches", args.max_batches, None),
                              ("--batch-size", args.batch_size, SCHEMA["data"]["batch_size"].high)):
        if value is not None and (value < 1 or (high is not None and value > high)):
            bound = ">= 1" + (f" and <= {high}" if high is not None else "")
            print(f"snnedu: {flag} must be {bound}, got {value}", file=sys.stderr)
            return 2
    if args.batch_size:
        cfg["data"]["batch_size"] = cfg["data"]["test_batch_size"] = args.batch_size
    from .errors import SnneduError

    try:
        result = run_config(cfg, args.out, epochs=args.epochs, max_batches=args.max_batches, device=args.device,
                            progress=not args.no_progress, resume=not args.no_resume)
    except SnneduError as e:
        print(f"snnedu: {e}", file=sys.stderr)
        return 2
    summary = {k: result[k] for k in ("name", "final_test_acc", "best_test_acc", "epochs", "device", "data",
                                      "wall_time_s_this_run")}
    print(json.dumps(summary, indent=2))
    print(f"snnedu: result written to {args.out}/{cfg['name']}/result.json")
    return 0


_EXAMPLES = """examples:
  python -m snnedu train configs/plif_mnist.yaml                       # a paper setting (CUDA when present)
  python -m snnedu train configs/pmlf_resnet20_cifar10.yaml --epochs 1 --max-batches 5 --device cpu
  python -m snnedu check configs/*.yaml                                # validate configs only
  python -m snnedu study studies/03_plif.yaml --jobs 2                 # a multi-seed study (resumable)
  python -m snnedu study studies/*.yaml --check                        # are stored results up to date?
  python -m snnedu preprocess dvs128-gesture --root DATA --T 20 --split-by number
  python -m snnedu preprocess cifar10-dvs --root DATA --T 10 --size 48
  python -m snnedu benchmark --quick                                   # in a clone (= make bench BENCH_ARGS=--quick)
  torchrun --nproc_per_node=2 -m snnedu train CONFIG                   # several GPUs (DDP)
"""


def _benchmark(argv) -> int:
    """Run ``benchmarks/run.py`` of the repository this package is imported from (a clone, installed
    editable by ``make install``). The benchmarks are not part of the installed package: they compare
    against peer libraries installed beside the clone (``make bench-extra``), so a non-editable install
    says where to run them instead of failing on an import."""
    import importlib
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    if not ((repo / "pyproject.toml").is_file() and (repo / "benchmarks" / "run.py").is_file()):
        print("snnedu: `benchmark` runs benchmarks/run.py of the snnedu repository, which is not part of an "
              "installed package; in a clone, run `make bench` (BENCH_ARGS=--quick for a short run)",
              file=sys.stderr)
        return 2
    sys.path.insert(0, str(repo))
    run = importlib.import_module("benchmarks.run")
    return int(run.main(list(argv)) or 0)


def _study(args) -> int:
    from .study import StudyError, check_study, run_study, summarize

    if args.jobs < 1:
        print(f"snnedu: --jobs must be >= 1, got {args.jobs}", file=sys.stderr)
        return 2
    status = 0
    for path in args.studies:
        try:
            if args.check:
                problems = check_study(path, args.out)
                for p in problems:
                    print(f"snnedu: stale: {p}", file=sys.stderr)
                if not problems:
                    print(f"{path}: up to date")
                status = max(status, 1 if problems else 0)
                continue
            res = run_study(path, args.out, jobs=args.jobs, progress=not args.no_progress, only=args.only)
        except StudyError as e:
            print(f"snnedu: {e}", file=sys.stderr)
            return 2
        print(f"snnedu: study {res['name']}: ran {res['ran']} cells, reused {res['reused']}; "
              f"{'complete' if res['complete'] else 'incomplete'} -> {args.out}/{res['name']}.json")
        if res["complete"]:
            for label, s in summarize(res).items():
                print(f"  {label:40s} test acc {s['mean']:6.2f} ± {s['se']:.2f} % (n = {s['n']})")
    return status


def _preprocess(args) -> int:
    from .data.dvs import FrameSetting, preprocess
    from .errors import SnneduError

    try:
        setting = FrameSetting(args.T, args.split_by, args.size, args.normalization, args.duration_us)
        splits = ("train", "test") if args.split == "both" else (args.split,)
        reports = preprocess(args.dataset, args.root, setting, cache_dir=args.cache_dir, splits=splits,
                             progress=not args.no_progress, rebuild=args.rebuild)
    except SnneduError as e:
        print(f"snnedu: {e}", file=sys.stderr)
        return 2
    for split, r in zip(splits, reports):
        what = ("already built" if r.existed else
                f"built {r.built} samples, reused {r.reused} from an interrupted run")
        print(f"snnedu: {args.dataset} {split}: {r.n} samples -> {r.path} ({what})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
