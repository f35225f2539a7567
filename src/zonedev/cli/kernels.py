"""``zonedev kernels``: the kernels a user can name, with their pgmap types and facts."""

from __future__ import annotations

import json

import click

from ..patches import KERNELS, NEWEST_TREE, kernel_range, patches_for


def kernel_info(name: str) -> dict:
    from ..linux.kernel import kernel_class
    patches = patches_for(name)
    cls = kernel_class(name, patches)
    facts = cls.facts
    return {
        "kernel": name,
        "covers": kernel_range(name),
        "patches": len(patches),
        "last_patch": patches[-1].commit if patches else None,
        "memory_types": list(facts.get("memory_types", ())),
        "types": {k: v for k, v in sorted(facts.get("type_names", {}).items())},
        "free_refcount": dict(facts.get("free_refcount", {})),
        "GUP_PIN_COUNTING_BIAS": facts.get("GUP_PIN_COUNTING_BIAS"),
        "pgmap_ops": list(facts.get("pgmap_ops", ())),
        "driver_allocation": facts.get("zd_alloc"),
    }


@click.command("kernels")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def command(as_json: bool) -> None:
    """List the modelled kernels and what each has.

    \b
    Examples:
      zonedev kernels
      zonedev kernels --json"""
    infos = [kernel_info(n) for n in KERNELS]
    if as_json:
        click.echo(json.dumps(infos, indent=1))
        return
    for i in infos:
        free = ", ".join(f"{t.replace('MEMORY_DEVICE_', '')}={n}" for t, n in i["free_refcount"].items())
        bias = i["GUP_PIN_COUNTING_BIAS"] or "-"
        click.echo(f"{i['kernel']:<7} {i['covers']:<24} {i['patches']:>2} patches  free refcount: {free}  "
                   f"pin bias: {bias}")
    click.echo(f"\nnewest follows {NEWEST_TREE}.\nAny version maps to the newest modelled kernel at or "
               f"below it: zonedev check ... --kernel 6.12 (or 6.1.0-56-amd64, 7.0-rc4).")
