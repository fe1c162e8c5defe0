"""``archplan export``: requirements file in, deployable bundle zip out."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def export_command(
    spec_path: Path = typer.Argument(..., help="WorkloadSpec YAML or JSON file (see examples/)."),
    out_path: Path = typer.Option(..., "--out", "-o", help="Zip file to write."),
    bundle: list[str] = typer.Option([], "--bundle", "-b",
                                     help="Only these bundles (default: all); repeat the option."),
    snapshot_path: Path | None = typer.Option(None, "--snapshot", help="Price snapshot file (default: bundled)."),
) -> None:
    """Plan a requirements file and write its bundles (Terraform, Helm, Airflow, purchase schedule) as a zip."""
    from app.bundles.context import bundle_context
    from app.bundles.package import bundle_names, render_bundle, to_zip
    from app.catalog.schema import load_snapshot
    from app.planner.demand import DemandError
    from app.planner.plan import make_plan
    from app.requirements.spec import SpecError, load_spec

    try:
        spec = load_spec(spec_path)
    except (SpecError, OSError) as exc:
        err.print(f"[red]Invalid requirements:[/red] {exc}")
        raise typer.Exit(2) from exc
    names = bundle_names()
    unknown = sorted(set(bundle) - set(names))
    if unknown:
        err.print(f"[red]Unknown bundle(s):[/red] {', '.join(unknown)}; available: {', '.join(names)}")
        raise typer.Exit(2)
    try:
        snapshot = load_snapshot(snapshot_path) if snapshot_path else load_snapshot()
        plan = make_plan(spec, snapshot)
    except DemandError as exc:
        err.print(f"[red]Invalid requirements:[/red] {exc}")
        raise typer.Exit(2) from exc
    if plan.status not in ("optimal", "feasible"):
        err.print(f"[red]No plan to export ({plan.status}).[/red]\n{plan.explanation or plan.message}")
        raise typer.Exit(1)
    ctx = bundle_context(spec, plan)
    files: dict[str, str] = {}
    for name in bundle or names:
        files.update(render_bundle(ctx, name))
    data = to_zip(files, root=f"{ctx.slug}-{ctx.plan_id}")
    tmp = out_path.with_name(out_path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(out_path)  # never leave a half-written zip behind
    out.print(f"Wrote {out_path} ({len(files)} files, {len(data):,} bytes) for {ctx.plan_id} "
              f"(snapshot {ctx.snapshot_id}).")
