"""`python -m exporter export|import|validate`: RTNeural JSON, C++ headers for every engine, test
vectors and the manifest, for our models (from their checkpoints alone) and for model files of
other projects (RTNeural JSON, AIDA-X, GuitarML, Neural Amp Modeler, TorchScript)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import cli, layout, rtneural
from common.errors import SuiteError
from exporter.layers import ExportError


def create_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m exporter", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        p.add_argument("--out", type=Path, default=layout.MODELS_DIR, help="the export folder")
        p.set_defaults(func=func)
        return p

    p = command("export", export, "our models, from their best checkpoints (keeps the imported models)")
    p.add_argument("--models", default="all", help="comma-separated names of our models, or all")
    p.add_argument("--checkpoints", type=Path, default=layout.CHECKPOINTS)

    p = command("import", import_, "model files of other projects, added to the export folder")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--name", help="the model's name (snake_case), for one model; default: from the file name")
    p.add_argument("--rate", choices=layout.RATES, help="one step per audio sample or per block; default: the format's")
    p.add_argument(
        "--prefixes", help="RTNeural torch state-dict JSON: the layers' key prefixes in order (default: found)"
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=1.0,
        help="test signal for an audio model whose file carries no reference",
    )
    p.add_argument(
        "--trust-code",
        action="store_true",
        help="load a TorchScript file: it runs code it carries, so only for a file you trust",
    )
    p.add_argument("--no-validate", action="store_true", help="skip the validation after the import")

    p = command("validate", validate, "check an export folder from its files (and our checkpoints)")
    p.add_argument("--models", default="all", help="comma-separated model names of the folder, or all")
    p.add_argument("--checkpoints", type=Path, default=layout.CHECKPOINTS, help="where our models' checkpoints are")
    p.add_argument("--build-dir", type=Path, default=layout.PROJECT / "build" / "check")
    p.add_argument("--backend", choices=rtneural.BACKENDS, default="eigen")
    p.add_argument("--no-rtneural", action="store_true", help="skip the RTNeural compile checks")
    return parser


def main(argv=None) -> int:
    args = create_parser().parse_args(argv)

    def work() -> int:
        try:
            return args.func(args)
        except ExportError as exc:
            raise SuiteError(str(exc)) from None

    return cli.guard(work, lambda: f"{args.out} is as it was before this command")


def export(args) -> int:
    from exporter.export import export_all
    from models.catalog import select

    t0 = time.time()
    exports = export_all(select(args.models), args.checkpoints, args.out)
    for m in exports:
        print(f"{m.row['model']:18} {m.model_json['metadata']['parameter_count']:>9,} params  -> {args.out / m.name}.*")
    print(
        f"exported {len(exports)} models to {args.out}/ for the RTNeural and generated engines, with "
        f"manifest.json, in {time.time() - t0:.1f} s"
    )
    return 0


def import_(args) -> int:
    from exporter.importer import import_files

    if not 0 < args.seconds <= 60:
        raise SuiteError(f"--seconds {args.seconds}: give a length from 0 to 60 seconds")
    t0 = time.time()
    prefixes = args.prefixes.split(",") if args.prefixes else None
    new = import_files(args.files, args.out, args.name, args.rate, args.seconds, prefixes, args.trust_code)
    for m in new:
        print(
            f"{m.name:20} {m.row['source']['format']:12} {m.rate:6} {len(m.vectors['inputs']):>7,} test steps  "
            f"-> {args.out / m.name}.*"
        )
    print(f"imported {len(new)} model(s) into {args.out}/ in {time.time() - t0:.1f} s")
    if args.no_validate:
        return 0
    return report(args.out, ",".join(m.name for m in new), None, args.out.parent / "check", "eigen", True)


def validate(args) -> int:
    from exporter.validate import names

    names(args.models)  # before anything is read
    checkpoints = args.checkpoints
    if not checkpoints.is_dir():  # a folder of imported models, or an export made elsewhere
        print(f"checkpoint checks skipped: {checkpoints} is not a folder (the export is checked from its files)")
        checkpoints = None
    return report(args.out, args.models, checkpoints, args.build_dir, args.backend, not args.no_rtneural)


def report(out: Path, models: str, checkpoints, build_dir: Path, backend: str, use_rtneural: bool) -> int:
    from exporter.validate import render
    from exporter.validate import validate as run

    t0 = time.time()
    reports, skipped = run(out, models, checkpoints, build_dir, backend, use_rtneural)
    print(render(reports))
    if skipped:
        print(f"RTNeural checks skipped: {skipped}")
    for r in reports:
        if r.checkpoint is not None:
            print(f"{r.row['model']}: checked {r.checkpoint}")
        for problem in r.problems:
            print(f"error: {r.row['model']}: {problem}", file=sys.stderr)
    bad = [r for r in reports if not r.ok]
    print(
        f"{'FAILED' if bad else 'passed'}: {len(reports) - len(bad)}/{len(reports)} models within "
        f"{layout.PARITY_TOLERANCE:g} of their reference, in {time.time() - t0:.1f} s"
    )
    return 1 if bad else 0
