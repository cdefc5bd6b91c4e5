"""``unioncat quality``: the data-quality report per member library."""
from __future__ import annotations

import json

import click

from .. import pipeline
from .context import Context


@click.command()
@click.argument("source", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def quality(obj: Context, source: str | None, as_json: bool) -> None:
    """Data quality per source: missing titles and identifiers, invalid ISBNs, repairs, quarantine."""
    cat = obj.catalogue()
    if source is not None and source not in {s.id for s in cat.sources.sources}:
        raise click.BadParameter(f"unknown source {source!r}", param_hint="SOURCE")
    report = pipeline.quality(cat, source)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    for name, q in report.items():
        _print_source(name, q)


def _print_source(name: str, q: dict) -> None:
    """One member's quality report as text: counts, formats, repairs and quarantine reasons with an example."""
    click.echo(f"{name}: {q['records']} records, {q['quarantined']} quarantined")
    click.echo(f"  without title {q['without_title']}, without any identifier {q['without_identifier']}, "
               f"with invalid ISBNs {q['with_invalid_isbn']} ({q['invalid_isbns']} numbers), "
               f"with repaired encodings {q['with_repairs']}")
    if q.get("holdings_records") or q.get("orphan_holdings"):
        click.echo(f"  holdings records {q['holdings_records']}: without 852 {q['holdings_without_852']}, "
                   f"pointing at no bibliographic record (004) {q['orphan_holdings']}")
        for example in q["orphan_examples"]:
            click.echo(f"      orphan {example}")
    if q.get("authority_records"):
        click.echo(f"  authority records {q['authority_records']}")
    for problem in q.get("authority_problems", ()):
        click.echo(f"      {problem}")
    if q["record_formats"]:
        click.echo("  formats: " + ", ".join(f"{k} {v}" for k, v in q["record_formats"].items()))
    for category, n in q["repairs"].items():
        click.echo(f"  repaired {n:>6}  {category}")
    for category, n in q["quarantined_by_reason"].items():
        click.echo(f"  quarantined {n:>6}  {category}")
        example = q["examples"].get(category, "")
        if example and example != category:
            click.echo(f"      e.g. {example[:160]}")
