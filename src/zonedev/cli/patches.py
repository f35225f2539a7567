"""``zonedev patches``: the patch series, in merge order."""

from __future__ import annotations

import click

from ._errors import dumps, fail

from ..patches import KERNELS, UnknownKernel, patches_for, series


def patch_info(p) -> dict:
    return {"commit": p.commit, "title": p.title, "version": p.version, "fixes": p.fixes,
            "seed": p.seed, "confidence": p.confidence, "replaces": p.replaces,
            "functions": sorted(p.functions)}


@click.command("patches")
@click.option("--kernel", "kernel_name", default=None, help="only the patches of this kernel")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def command(kernel_name: str | None, as_json: bool) -> None:
    """List the kernel changes the model is made of.

    \b
    Examples:
      zonedev patches
      zonedev patches --kernel v6.1
      zonedev patches --json"""
    if kernel_name is None:
        chosen = series()
    else:
        try:
            chosen = patches_for(kernel_name)
        except UnknownKernel:
            fail(f"--kernel: unknown kernel {kernel_name!r}; known: {', '.join(KERNELS)}, "
                 f"or a version such as 6.12")
    infos = [patch_info(p) for p in chosen]
    if as_json:
        click.echo(dumps(infos, indent=1))
        return
    for i in infos:
        extra = f"  Fixes: {i['fixes']}" if i["fixes"] else ""
        click.echo(f"{i['version']:<7} {i['commit'][:12]:<12} {i['title']}{extra}")
