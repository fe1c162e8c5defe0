"""Assemble bundles into a zip that is byte-identical for the same plan."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Mapping

from app.bundles.context import BundleContext
from app.bundles.procurement import schedule_csv, schedule_json

Files = dict[str, str]
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def procurement_files(ctx: BundleContext) -> Files:
    return {
        "purchase-schedule/schedule.csv": schedule_csv(ctx.plan),
        "purchase-schedule/schedule.json": schedule_json(ctx.plan, plan_id=ctx.plan_id),
    }


def _renderers() -> Mapping[str, Callable[[BundleContext], Files]]:
    """Bundle name -> renderer. Imported lazily so a missing bundle never breaks the others."""
    out: dict[str, Callable[[BundleContext], Files]] = {"purchase-schedule": procurement_files}
    for name, module, func in (("terraform", "app.bundles.terraform", "render_terraform"),
                               ("private-servers", "app.bundles.terraform", "render_bom"),
                               ("helm", "app.bundles.helm", "render_helm"),
                               ("airflow", "app.bundles.airflow", "render_airflow")):
        try:
            mod = __import__(module, fromlist=[func])
        except ModuleNotFoundError:
            continue
        if hasattr(mod, func):
            out[name] = getattr(mod, func)
    return out


def bundle_names() -> list[str]:
    return sorted(_renderers())


def render_bundle(ctx: BundleContext, name: str) -> Files:
    renderers = _renderers()
    if name not in renderers:
        raise KeyError(f"unknown bundle {name!r}; available: {', '.join(sorted(renderers))}")
    return renderers[name](ctx)


def render_all(ctx: BundleContext) -> Files:
    files: Files = {}
    for name in bundle_names():
        files.update(render_bundle(ctx, name))
    return files


def to_zip(files: Mapping[str, str], *, root: str) -> bytes:
    """Deterministic zip: sorted paths, fixed timestamps and permissions."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(files):
            info = zipfile.ZipInfo(f"{root}/{path}", date_time=FIXED_TIME)
            executable = path.endswith(".sh")
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, files[path].encode("utf-8"))
    return buf.getvalue()
