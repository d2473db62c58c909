"""`python -m exporter export|validate`: RTNeural JSON, C++ headers and test vectors for the models."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import rtneural
from common.errors import SuiteError
from exporter.layers import ExportError
from models.catalog import MODELS, get


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exporter", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("export", "validate"):
        p = sub.add_parser(name)
        p.add_argument("--models", default="all", help="comma-separated names, or all")
        p.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
        p.add_argument("--out", type=Path, default=Path("build/models"))
        if name == "export":
            p.add_argument("--data-dir", type=Path, default=Path("data"),
                           help="where the validation data for the test vectors is read")
        else:
            p.add_argument("--build-dir", type=Path, default=Path("build/check"))
            p.add_argument("--backend", choices=rtneural.BACKENDS, default="eigen")
            p.add_argument("--no-rtneural", action="store_true", help="skip the RTNeural compile checks")
    args = parser.parse_args(argv)
    specs = list(MODELS.values()) if args.models == "all" else [get(n.strip()) for n in args.models.split(",")]
    try:
        return export(args, specs) if args.command == "export" else validate(args, specs)
    except (SuiteError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def export(args, specs) -> int:
    from exporter.export import export_all

    t0 = time.time()
    exports = export_all(specs, args.checkpoints, args.out, args.data_dir)
    for e in exports:
        print(f"{e.spec.name:18} {e.spec.parameter_count:>9,} params  -> {args.out / e.spec.snake_name}"
              ".{json,h,vectors.json}")
    print(f"exported {len(exports)} models to {args.out}/ in {time.time() - t0:.1f} s")
    return 0


def validate(args, specs) -> int:
    from exporter.validate import TOLERANCE, table
    from exporter.validate import validate as run

    t0 = time.time()
    reports, skipped = run(specs, args.out, args.checkpoints, args.build_dir, args.backend, not args.no_rtneural)
    print(table(reports))
    if skipped:
        print(f"RTNeural checks skipped: {skipped}")
    for r in reports:
        for problem in r.problems:
            print(f"error: {r.spec.name}: {problem}", file=sys.stderr)
    bad = [r for r in reports if not r.ok]
    print(f"{'FAILED' if bad else 'passed'}: {len(reports) - len(bad)}/{len(reports)} models within "
          f"{TOLERANCE:g} of torch, in {time.time() - t0:.1f} s")
    return 1 if bad else 0
