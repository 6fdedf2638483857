"""The `ttgen` command line: one thin layer over the stages."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ttgen.errors import TtgenError, one_line

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line on stderr and exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        raise TtgenError(f"{self.prog}: {message}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ttgen", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    trace = sub.add_parser(
        "trace",
        help="torch.export an HF model into module-annotated graphs (prefill, decode)",
        description="Export a Hugging Face model with torch.export and save the module-annotated "
        "graph of each mode as JSON.",
    )
    trace.add_argument("model", help="model family from the registry, e.g. llama")
    source = trace.add_mutually_exclusive_group()
    source.add_argument("--preset", help="a preset config of the family (default: tiny)")
    source.add_argument(
        "--checkpoint", type=Path, help="a local HF folder (config.json + safetensors)"
    )
    trace.add_argument(
        "--seq-len", type=_positive_int, default=128, help="prefill tokens and decode cache length"
    )
    trace.add_argument("--batch", type=_positive_int, default=1, help="users per batch")
    trace.add_argument("--num-layers", type=_positive_int, help=_NUM_LAYERS_HELP)
    trace.add_argument(
        "--mode",
        choices=("all", "both", "prefill", "decode", "forward"),
        default="all",
        help="the modes to export (default all of the model's: prefill and decode for a causal LM, "
        "forward for an image classifier; `both` = prefill and decode)",
    )
    trace.add_argument(
        "--no-stamp",
        action="store_true",
        help="export every decoder layer (by default a homogeneous stack is exported as its first "
        "3 layers and stamped out to full depth: the same graph, faster)",
    )
    trace.add_argument(
        "--out", type=Path, help="output JSON (default: traces/<model>-<preset>.json)"
    )
    trace.add_argument("--quiet", action="store_true", help="no progress and no summary")

    check = sub.add_parser(
        "check",
        help="match a spec's rules against a model's traced graphs and report coverage",
        description="Trace the spec's model family, match every rule in prefill and decode, and list "
        "what each rule matched. Exits 1 if any graph node is not covered by exactly one match.",
    )
    check.add_argument("spec", type=Path, help="a spec file, e.g. specs/llama.yaml")
    check.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="also write a picture of layer 0's graph coloured by rule, uncovered ops marked, with "
        "the bring-up report",
    )
    _model_source_args(check)

    plan = sub.add_parser(
        "plan",
        help="fix and validate every dtype, memory, program and compute config for a device",
        description="Trace, match and plan; print per mode every op with its configs, L1 per core and "
        "DRAM bytes, and the totals. An infeasible target fails with the numbers (exit 2).",
    )
    plan.add_argument("spec", type=Path, help="a spec file, e.g. specs/llama.yaml")
    _target_args(plan)
    plan.add_argument("--out", type=Path, help="also write the EmitPlan as JSON")
    plan.add_argument(
        "--optimize", action="store_true", help="choose among valid options by predicted time"
    )
    _model_source_args(plan)

    emit = sub.add_parser(
        "emit",
        help="generate the TTNN model code and its parity tests",
        description="Trace, match, plan and render the templates into a package of TTNN modules, "
        "model, weights, generator and parity tests. Only changed files are written.",
    )
    emit.add_argument("spec", type=Path, help="a spec file, e.g. specs/llama.yaml")
    _target_args(emit)
    emit.add_argument(
        "--out", type=Path, help="output package folder (default: generated/<family>)"
    )
    _model_source_args(emit)

    perf = sub.add_parser(
        "perf",
        help="predict prefill and decode time per op group with the analytic cost model",
        description="Plan the spec for a device and predict, per op group, time, DRAM bytes, FLOPs and "
        "the bound; TTFT, decode tokens/s/user and the DRAM roofline. --calibration compares the model "
        "with tt-transformers' published rates.",
    )
    perf.add_argument("spec", type=Path, help="a spec file, e.g. specs/llama.yaml")
    perf.add_argument("--device", help="device profile (default: the spec's target)")
    perf.add_argument("--precision", help="precision preset (default: the spec's)")
    perf.add_argument("--batch", type=_positive_int, default=1, help="decode users (default 1)")
    perf.add_argument(
        "--context",
        type=_positive_int,
        default=256,
        help="decode context length and prefill tokens",
    )
    perf.add_argument("--plot", type=Path, help="also draw time per op group to a PNG")
    perf.add_argument(
        "--calibration",
        action="store_true",
        help="predicted vs published for every row that can be modelled",
    )
    _model_source_args(perf)

    run = sub.add_parser(
        "run",
        help="generate text with an emitted model package (emulator unless real ttnn imports)",
        description="Prefill each prompt, decode all users together through the captured trace, "
        "stream the continuation, report load times and tokens/s, and compare with HF greedy decoding.",
    )
    run.add_argument("package", type=Path, help="an emitted package, e.g. generated/smollm2")
    run.add_argument("--prompt", action="append", default=[], help="a prompt (repeatable)")
    run.add_argument("--prompts-file", type=Path, help="a file with one prompt per line")
    run.add_argument("--max-new-tokens", type=_positive_int, default=32)
    run.add_argument(
        "--batch", type=_positive_int, help="users to run (prompts are repeated to fill the batch)"
    )
    run.add_argument(
        "--checkpoint",
        type=Path,
        help="HF folder with the weights (default for smollm2: the packaged GGUF, converted once)",
    )
    run.add_argument(
        "--weight-cache",
        type=Path,
        help="TTNN weight cache (default: ~/.cache/ttgen/weights/<package>)",
    )
    run.add_argument("--no-compare", action="store_true", help="skip the HF greedy comparison")
    run.add_argument("--image", action="append", default=[], type=Path,
                     help="an image classifier package: an image file to classify (repeatable; PNG, JPEG, ...)")  # fmt: skip
    run.add_argument(
        "--dataset",
        help="an image classifier package: classify a dataset's held-out split (digits)",
    )
    run.add_argument("--limit", type=_positive_int, help="with --dataset: the first N images only")
    run.add_argument(
        "--ttnn", choices=("auto", "emu", "real"), default=None, help="ttnn backend (default: auto)"
    )
    return parser


def _batch(text: str) -> int:
    from ttgen.spec.load import MAX_BATCH

    value = _positive_int(text)
    if value > MAX_BATCH:
        raise argparse.ArgumentTypeError(
            f"at most {MAX_BATCH} (decode holds one user per tile row), got {value}"
        )
    return value


def _max_seq_len(text: str) -> int:
    from ttgen.spec.load import SEQ_LEN_MULTIPLE

    value = _positive_int(text)
    if value % SEQ_LEN_MULTIPLE:
        raise argparse.ArgumentTypeError(f"must be a multiple of {SEQ_LEN_MULTIPLE}, got {value}")
    return value


def _target_args(p: argparse.ArgumentParser) -> None:
    """Overrides of the spec's target and precision."""
    p.add_argument("--device", help="device profile (default: the spec's target)")
    p.add_argument("--precision", help="precision preset (default: the spec's)")
    p.add_argument("--batch", type=_batch, help="max batch (default: the spec's target)")
    p.add_argument(
        "--max-seq-len", type=_max_seq_len, help="max sequence length (default: the spec's target)"
    )


def _analyze(args: argparse.Namespace, spec, status):
    """Trace the model the arguments name and match the spec's rules, showing progress."""
    from ttgen.pipeline import analyze

    return analyze(
        spec,
        preset=args.preset,
        checkpoint=args.checkpoint,
        seq_len=args.seq_len,
        num_layers=args.num_layers,
        step=status.update,
    )


_NUM_LAYERS_HELP = "cut the preset to its first N decoder layers (all other shapes real)"


def _model_source_args(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group()
    source.add_argument("--preset", help="a preset of the spec's model family (default: tiny)")
    source.add_argument(
        "--checkpoint", type=Path, help="a local HF folder (config.json + safetensors)"
    )
    p.add_argument(
        "--seq-len",
        type=_positive_int,
        default=128,
        help="prefill tokens / decode cache length to trace",
    )
    p.add_argument("--num-layers", type=_positive_int, help=_NUM_LAYERS_HELP)


def _cmd_check(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ttgen.spec import load_spec

    spec = load_spec(args.spec)
    if args.html is not None:
        from ttgen.trace.trace import check_writable

        check_writable(args.html)
    err = Console(stderr=True, log_path=False)
    with err.status("tracing") as status:
        analysis = _analyze(args, spec, status)
    from ttgen.match.report import print_coverage

    print_coverage(analysis)
    if args.html is not None:
        from ttgen.match.diagnose import near_misses
        from ttgen.match.picture import layer_picture, write_picture

        mode = next(iter(analysis.matches))
        g, result = analysis.trace.graphs[mode], analysis.matches[mode]
        meta = analysis.trace.meta
        title = f"{spec.path} on {meta['checkpoint'] or meta['model'] + ' ' + str(meta['preset'])} ({mode})"
        write_picture(args.html, layer_picture(g, result, near_misses(spec, g, result), title))
        print(f"picture of one layer: {args.html}")
    return 0 if analysis.covered else 1


def _cmd_trace(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ttgen.models.registry import get_family, load_presets
    from ttgen.trace.trace import check_writable

    family = get_family(args.model)
    if args.preset is not None and args.preset not in load_presets(family):
        known = ", ".join(load_presets(family))
        raise TtgenError(
            f"unknown preset '{args.preset}' for model '{family.name}' (known: {known})"
        )
    label = args.checkpoint.name if args.checkpoint else (args.preset or family.default_preset)
    out = args.out or Path("traces") / f"{family.name}-{label}.json"
    check_writable(out)
    modes = {"all": None, "both": ("prefill", "decode")}.get(args.mode, (args.mode,))
    if args.checkpoint is None:  # before building the model (a checkpoint's kind is known after)
        from ttgen.models.kinds import select_modes

        select_modes(family.model_kind, modes)

    err = Console(stderr=True, quiet=args.quiet, log_path=False)
    with err.status("importing torch and transformers") as status:
        from ttgen.models.registry import build_model
        from ttgen.trace.trace import save_trace, trace_model

        def step(message: str) -> None:
            status.update(message)
            err.log(message)

        origin = f"checkpoint {args.checkpoint}" if args.checkpoint else f"preset {label}"
        step(f"building {family.name} ({origin})")
        model, source = build_model(
            family, preset=args.preset, checkpoint=args.checkpoint, num_layers=args.num_layers
        )
        trace = trace_model(model, source, modes=modes, batch=args.batch, seq_len=args.seq_len,
                            stamp=not args.no_stamp, step=step)  # fmt: skip
        step(f"writing {out}")
        save_trace(trace, out)
    if not args.quiet:
        from ttgen.trace.report import print_summary

        print_summary(trace, out)
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ttgen.plan import make_plan
    from ttgen.plan.report import print_plan
    from ttgen.spec import load_spec

    spec = load_spec(args.spec)
    if args.out is not None:
        from ttgen.trace.trace import check_writable

        check_writable(args.out)
    err = Console(stderr=True, log_path=False)
    with err.status("tracing") as status:
        analysis = _analyze(args, spec, status)
        status.update("planning")
        if args.optimize:
            from ttgen.plan.optimize import optimize

            best, baseline, candidates = optimize(analysis, device=args.device, precision=args.precision,
                                                  max_batch=args.batch, max_seq_len=args.max_seq_len)  # fmt: skip
            plan = best.plan
        else:
            plan = make_plan(analysis, device=args.device, precision=args.precision, max_batch=args.batch,
                             max_seq_len=args.max_seq_len)  # fmt: skip
    print_plan(plan)
    if args.optimize:
        from ttgen.plan.report import print_candidates

        print_candidates(best, baseline, candidates)
    if args.out is not None:
        args.out.write_text(plan.to_json())
    return 0


def _cmd_emit(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ttgen.emit import emit
    from ttgen.emit.writer import check_package_folder
    from ttgen.plan import make_plan
    from ttgen.spec import load_spec

    spec = load_spec(args.spec)
    out = args.out or Path("generated") / spec.family
    check_package_folder(out)  # before the minutes of tracing, and again under the write lock
    err = Console(stderr=True, log_path=False)
    with err.status("tracing") as status:
        analysis = _analyze(args, spec, status)
        status.update("planning")
        plan = make_plan(analysis, device=args.device, precision=args.precision, max_batch=args.batch,
                         max_seq_len=args.max_seq_len)  # fmt: skip
        status.update("rendering")
        written = emit(plan, out)
    print(
        f"{out}: {len(written)} file(s) changed"
        + (f" ({', '.join(written)})" if written else " (up to date)")
    )
    return 0


def _cmd_classify(args: argparse.Namespace, backend: str, cache: Path) -> int:
    from rich.console import Console

    from ttgen.classify import classify
    from ttgen.console import report_console

    if args.prompt or args.prompts_file:
        raise TtgenError(
            f"{args.package} is an image classifier: give --image FILE or --dataset digits, not prompts"
        )
    out, err = report_console(), Console(stderr=True, log_path=False)
    out.print(f"[bold]{args.package}[/] on {backend}")
    with err.status("starting") as status:
        result = classify(args.package, images=args.image, dataset=args.dataset, checkpoint=args.checkpoint,
                          weight_cache=cache, limit=args.limit, status=status.update)  # fmt: skip
    if args.dataset is None:
        for name, ours, ref in zip(
            result.names, result.predictions, result.hf_predictions, strict=True
        ):
            out.print(f"{name}: class {ours}" + ("" if ours == ref else f" (HF: {ref})"))
    else:
        n = len(result.names)
        out.print(f"{args.dataset} held-out split: {n} images")
        out.print(f"HF accuracy {result.hf_accuracy:.4f}; generated accuracy {result.accuracy:.4f} "
                  f"({100 * (result.accuracy - result.hf_accuracy):+.2f} points)")  # fmt: skip
    out.print(f"top-1 agreement with HF: {result.agreement:.4f} ({len(result.names)} images)")
    out.print(f"weights: {result.load_seconds:.2f} s to load (cache {cache}); {result.images_per_s:.1f} images/s "
              "(traced, two command queues)")  # fmt: skip
    return 0


def _backend_and_cache(args: argparse.Namespace) -> tuple[str, Path]:
    """The ttnn backend `run` uses, and the package's TTNN weight cache folder."""
    from ttgen.emu.backend import select_backend
    from ttgen.models.gguf import cache_root

    try:
        backend = select_backend(args.ttnn)
    except ValueError as exc:
        raise TtgenError(str(exc)) from None
    cache = args.weight_cache or cache_root() / "weights" / args.package.resolve().name
    if cache.exists() and not cache.is_dir():
        raise TtgenError(f"--weight-cache {cache}: exists and is not a folder")
    return backend, cache


def _cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ttgen.classify import is_classifier_package
    from ttgen.run import NEAR_TIE, run

    if is_classifier_package(args.package):
        return _cmd_classify(args, *_backend_and_cache(args))
    if args.image or args.dataset:
        raise TtgenError(f"{args.package}: --image and --dataset are for image classifier packages")
    prompts = list(args.prompt)
    if args.prompts_file is not None:
        try:
            prompts += [
                line.rstrip("\n")
                for line in args.prompts_file.read_text().splitlines()
                if line.strip()
            ]
        except OSError as exc:
            raise TtgenError(f"--prompts-file {args.prompts_file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            line = args.prompts_file.read_bytes()[: exc.start].count(b"\n") + 1
            raise TtgenError(f"--prompts-file {args.prompts_file}:{line}: not UTF-8 text") from None
    if not prompts:
        raise TtgenError("give --prompt TEXT or --prompts-file FILE")
    if args.batch:
        prompts = [prompts[i % len(prompts)] for i in range(args.batch)]
    backend, cache = _backend_and_cache(args)
    out, err = Console(), Console(stderr=True, log_path=False)
    out.print(f"[bold]{args.package}[/] on {backend}")
    for i, p in enumerate(prompts):
        out.print(f"[bold]prompt {i + 1}:[/] {p}")
    shown = {"text": ""}

    def on_text(user: int, text: str) -> None:
        if user == 0:  # stream the first user's continuation
            out.print(text[len(shown["text"]) :], end="", highlight=False, soft_wrap=True)
            shown["text"] = text

    with err.status("starting") as status:
        result = run(args.package, prompts, max_new_tokens=args.max_new_tokens, checkpoint=args.checkpoint,
                     weight_cache=cache, compare_hf=not args.no_compare, on_text=on_text, status=status.update)  # fmt: skip
    out.print()
    for i, text in enumerate(result.completions[1:], 2):
        out.print(f"[bold]continuation {i}:[/] {text}")
    out.print(f"weights: {result.load_seconds:.2f} s to load (cache {cache})")
    out.print(
        f"prefill: {result.prefill_tokens_per_s:.1f} tokens/s; decode: {result.decode_tokens_per_s:.2f} tokens/s ({len(prompts)} users)"
    )
    if result.matches_hf is not None:
        out.print(
            f"tokens equal HF greedy decoding: [{'green' if result.matches_hf else 'red'}]{'yes' if result.matches_hf else 'no'}[/]"
        )
        for user, same, margin in result.differences():
            kind = "a near-tie, decided by rounding" if margin < NEAR_TIE else "a clear margin"
            out.print(
                f"  user {user + 1}: {same}/{args.max_new_tokens} new tokens equal HF; at the next, "
                f"HF's top-2 logit margin is {margin:.4f} ({kind})"
            )
    return 0


def _cmd_perf(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ttgen.devices import get_device
    from ttgen.perf import predict
    from ttgen.perf.report import plot_report, print_calibration, print_report
    from ttgen.pipeline import analyze
    from ttgen.plan import PlanError, make_plan
    from ttgen.spec import load_spec

    spec = load_spec(args.spec)
    err = Console(stderr=True, log_path=False)
    if args.calibration:
        from ttgen.perf.calibration import PUBLISHED

        rows, analyses = [], {}
        with err.status("calibration") as status:
            for row in PUBLISHED:
                if row.preset not in analyses:
                    analyses[row.preset] = analyze(
                        spec, preset=row.preset, seq_len=128, step=status.update
                    )
                plan = make_plan(
                    analyses[row.preset],
                    device=row.device,
                    precision="performance",
                    max_batch=1,
                    max_seq_len=1024,
                )
                rows.append(
                    (
                        row,
                        predict(
                            plan, get_device(row.device), batch=1, context=256, prefill_len=128
                        ),
                    )
                )
        print_calibration(rows)
        return 0
    if spec.model_kind == "image_classifier":
        from ttgen.perf import predict_forward
        from ttgen.perf.report import print_forward_report

        with err.status("tracing") as status:
            analysis = _analyze(args, spec, status)
            status.update("planning")
            plan = make_plan(
                analysis, device=args.device, precision=args.precision, max_batch=args.batch
            )
        report = predict_forward(plan, get_device(plan.device))
        print_forward_report(report, plan, f"{plan.family} {plan.source} ({plan.precision})")
        return 0
    max_seq = max(spec.target.max_seq_len, -(-args.context // 128) * 128)
    with err.status("tracing") as status:
        analysis = _analyze(args, spec, status)
        status.update("planning")
        plan = make_plan(
            analysis,
            device=args.device,
            precision=args.precision,
            max_batch=args.batch,
            max_seq_len=max_seq,
        )
    try:
        device = get_device(plan.device)
    except KeyError as exc:
        raise PlanError(str(exc.args[0])) from None
    report = predict(plan, device, batch=args.batch, context=args.context, prefill_len=args.context)
    print_report(report, f"{plan.family} {plan.source} ({plan.precision})")
    if args.plot:
        plot_report(report, args.plot)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _build_parser().parse_args(argv)
        if args.command == "trace":
            return _cmd_trace(args)
        if args.command == "check":
            return _cmd_check(args)
        if args.command == "plan":
            return _cmd_plan(args)
        if args.command == "emit":
            return _cmd_emit(args)
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "perf":
            return _cmd_perf(args)
        raise TtgenError(f"unknown command {args.command}")
    except TtgenError as exc:
        print(f"ttgen: error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ttgen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
