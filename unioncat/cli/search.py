"""``unioncat search``, ``record`` and ``serve``: the catalogue as readers see it.

``search`` and ``record`` print what the web app's own JSON views answer
(:mod:`unioncat.present`), so the command line and ``/search.json`` never disagree.
"""
from __future__ import annotations

import json
import sys

import click
from waitress import serve as waitress_serve

from publish.marc import record_output
from web.origin import check_serving, waitress_options

from ..inprocess import InProcessRunner
from ..present import make_app, record_json, search_json
from .context import Context, say


def _facet_filters(filters: tuple[str, ...]) -> dict[str, list[str]]:
    """``("region=Nanjing", …)`` → ``{"region": ["Nanjing"], …}``; anything else is a usage error."""
    parsed: dict[str, list[str]] = {}
    for f in filters:
        if "=" not in f:
            raise click.UsageError(f"--filter {f!r}: expected FACET=VALUE")
        k, v = f.split("=", 1)
        parsed.setdefault(k, []).append(v)
    return parsed


@click.command()
@click.argument("query", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--page", default=1, show_default=True, type=click.IntRange(1))
@click.option("--filter", "filters", multiple=True, metavar="FACET=VALUE",
              help="Facet filter, e.g. --filter region=Nanjing (repeatable).")
@click.pass_obj
def search(obj: Context, query: tuple[str, ...], as_json: bool, limit: int, page: int,
           filters: tuple[str, ...]) -> None:
    """Search the catalogue."""
    result = search_json(obj.catalogue(), " ".join(query), _facet_filters(filters), page=page, limit=limit)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    click.echo(f"{result['total']} hits")
    for hit in result["hits"]:
        libs = ", ".join(dict.fromkeys(h["library"] for h in hit["holdings"]))
        click.echo(f"  {hit['id']}  {hit['title']}  ({hit.get('year') or 'n.d.'}; {hit.get('format')})")
        click.echo(f"      held by {hit['library_count']}: {libs}")


@click.command()
@click.argument("cluster_id")
@click.option("--format", "fmt", type=click.Choice(["json", "marc", "marcxml"]), default="json", show_default=True)
@click.pass_obj
def record(obj: Context, cluster_id: str, fmt: str) -> None:
    """Print one catalogue record (json), or its member records (marc, marcxml) as every MARC path gives them."""
    cat = obj.catalogue()
    live = cat.clusters.resolve(cluster_id)
    if live is None:
        raise click.ClickException(f"no record {cluster_id!r}")
    if fmt == "json":
        click.echo(json.dumps(record_json(cat, live), ensure_ascii=False, indent=2))
    else:
        sys.stdout.buffer.write(record_output(cat, live, fmt))


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.pass_obj
def serve(obj: Context, host: str, port: int, threads: int) -> None:
    """Serve the web catalogue."""
    cat = obj.catalogue()
    app = make_app(cat, jobs=InProcessRunner(cat))
    try:
        check_serving(app, host)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    say(f"serving {cat.sources.consortium.name} on http://{host}:{port}/")
    waitress_serve(app, host=host, port=port, threads=threads, **waitress_options(app))
