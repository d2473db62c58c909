"""`python -m exporter export|validate`: RTNeural JSON, C++ headers, test vectors and the manifest
for the models, from their checkpoints alone."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import cli, layout, rtneural
from common.errors import SuiteError
from exporter.layers import ExportError
from models.catalog import select


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exporter", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("export", "validate"):
        p = sub.add_parser(name)
        p.add_argument("--models", default="all", help="comma-separated names, or all")
        p.add_argument("--checkpoints", type=Path, default=layout.CHECKPOINTS)
        p.add_argument("--out", type=Path, default=layout.MODELS_DIR)
        if name == "validate":
            p.add_argument("--build-dir", type=Path, default=layout.PROJECT / "build" / "check")
            p.add_argument("--backend", choices=rtneural.BACKENDS, default="eigen")
            p.add_argument("--no-rtneural", action="store_true", help="skip the RTNeural compile checks")
    args = parser.parse_args(argv)

    def work() -> int:
        specs = select(args.models)
        try:
            return export(args, specs) if args.command == "export" else validate(args, specs)
        except ExportError as exc:
            raise SuiteError(str(exc)) from None

    return cli.guard(work, lambda: f"{args.out} is as it was before this command")


def export(args, specs) -> int:
    from exporter.export import export_all

    t0 = time.time()
    exports = export_all(specs, args.checkpoints, args.out)
    for e in exports:
        print(
            f"{e.spec.name:18} {e.spec.parameter_count:>9,} params  -> {args.out / e.spec.snake_name}"
            ".{json,h,generated.h,vectors.json}"
        )
    print(
        f"exported {len(exports)} models to {args.out}/ for the RTNeural and generated engines, with "
        f"manifest.json, in {time.time() - t0:.1f} s"
    )
    return 0


def validate(args, specs) -> int:
    from exporter.validate import render
    from exporter.validate import validate as run

    t0 = time.time()
    reports, skipped = run(specs, args.out, args.checkpoints, args.build_dir, args.backend, not args.no_rtneural)
    print(render(reports))
    if skipped:
        print(f"RTNeural checks skipped: {skipped}")
    for r in reports:
        print(f"{r.spec.name}: checked {r.checkpoint}")
        for problem in r.problems:
            print(f"error: {r.spec.name}: {problem}", file=sys.stderr)
    bad = [r for r in reports if not r.ok]
    print(
        f"{'FAILED' if bad else 'passed'}: {len(reports) - len(bad)}/{len(reports)} models within "
        f"{layout.PARITY_TOLERANCE:g} of torch, in {time.time() - t0:.1f} s"
    )
    return 1 if bad else 0
