"""`python -m exporter export|import|validate|subset`: RTNeural JSON, C++ headers for every engine,
test vectors and the manifest, for our models (from their checkpoints alone) and for model files of
other projects (RTNeural JSON, AIDA-X, GuitarML, Neural Amp Modeler, TorchScript)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import cli, layout, manifest, rtneural
from common.errors import SuiteError
from exporter.layers import ExportError

# `import --seconds`: of test signal for a model whose file carries no reference. The int8 engine's
# expected outputs are its arithmetic stepped in numpy (~0.5 ms a step for a GRU-8): a minute at
# 48 kHz is some 25 minutes of it, the most an import should take.
MAX_SECONDS = 60.0


def create_parser() -> argparse.ArgumentParser:
    parser = cli.parser("python -m exporter", __doc__)
    sub = cli.commands(parser)
    for add in (add_export, add_import, add_validate, add_subset):
        add(sub)
    return parser


def add_export(sub) -> None:
    p = cli.command(sub, "export", export, "our models, from their best checkpoints (keeps the imported models)")
    p.add_argument("--out", type=Path, default=layout.MODELS_DIR, help="the export folder")
    p.add_argument("--models", default=layout.ALL, help="comma-separated names of our models, or all")
    p.add_argument("--checkpoints", type=Path, default=layout.CHECKPOINTS, help="where our models' checkpoints are")


def add_import(sub) -> None:
    p = cli.command(sub, "import", import_, "model files of other projects, added to the export folder")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="the model files")
    p.add_argument("--out", type=Path, default=layout.MODELS_DIR, help="the export folder")
    p.add_argument("--name", help="the model's name (snake_case), for one model; default: from the file name")
    p.add_argument("--rate", choices=layout.RATES, help="one step per audio sample or per block; default: the format's")
    p.add_argument(
        "--prefixes", help="RTNeural torch state-dict JSON: the layers' key prefixes in order (default: found)"
    )
    p.add_argument(
        "--seconds",
        type=cli.number(0, MAX_SECONDS, above=True),
        default=1.0,
        help="test signal for an audio model whose file carries no reference",
    )
    p.add_argument(
        "--trust-code",
        action="store_true",
        help="load a TorchScript file: it runs code it carries, so only for a file you trust",
    )
    p.add_argument("--no-validate", action="store_true", help="skip the validation after the import")


def add_validate(sub) -> None:
    p = cli.command(sub, "validate", validate, "check an export folder from its files (and our checkpoints)")
    p.add_argument("--out", type=Path, default=layout.MODELS_DIR, help="the export folder")
    p.add_argument("--models", default=layout.ALL, help="comma-separated model names of the folder, or all")
    p.add_argument("--checkpoints", type=Path, default=layout.CHECKPOINTS, help="where our models' checkpoints are")
    p.add_argument(
        "--build-dir", type=Path, default=layout.PROJECT / "build" / "check", help="where the checks compile"
    )
    p.add_argument("--backend", choices=rtneural.BACKENDS, default="eigen", help="RTNeural's backend for its checks")
    p.add_argument("--no-rtneural", action="store_true", help="skip the RTNeural compile checks")


def add_subset(sub) -> None:
    p = cli.command(
        sub, "subset", subset, "an export folder of some models of another, every file derived as export writes it"
    )
    p.add_argument("--models", required=True, help="comma-separated model names of the --from folder")
    p.add_argument(
        "--from", dest="source", type=Path, default=layout.MODELS_DIR, metavar="FOLDER", help="the export to take from"
    )
    p.add_argument("--out", type=Path, required=True, metavar="FOLDER", help="the new export folder (replaced whole)")


def main(argv=None) -> int:
    parser = create_parser()

    def work(args: argparse.Namespace) -> int:
        try:
            return args.handler(args)
        except ExportError as exc:
            raise SuiteError(str(exc)) from None

    args = parser.parse_args(argv)
    return cli.guard(lambda: work(args), lambda: f"{args.out} is as it was before this command")


def export(args) -> int:
    from exporter.export import export_all
    from models.catalog import select

    cli.refuse_overwrite([("--out", args.out)], [("--checkpoints", args.checkpoints)])
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

    cli.refuse_overwrite([("--out", args.out)], [("FILE", f) for f in args.files])
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


def subset(args) -> int:
    """The models named, read back from the --from folder and written into --out by the same
    writer as export and import (bench run --models builds its harness from such a folder)."""
    from exporter import folder
    from exporter.validate import names, select

    wanted = names(args.models)
    cli.refuse_overwrite([("--out", args.out)], [("--from", args.source)])
    doc = manifest.load(args.source)
    keep = {m["name"] for m in select(doc, wanted, args.source)}
    models = [m for m in folder.read(args.source) if m.name in keep]  # in export order: the tables'
    folder.write(args.out, models, doc["project_commit"])
    print(f"wrote {len(models)} of {len(doc['models'])} models of {args.source} into {args.out}/")
    return 0
