"""One digest line per indexed document, to prove two versions of the index stage index the same documents.

    PYTHONPATH=/work/main python -P bench/index_digests.py WORK/var/index main.txt
    PYTHONPATH=.          python -P bench/index_digests.py WORK/var/index branch.txt
    join -t$'\t' <(sort main.txt) <(sort branch.txt) | awk -F'\t' '$2 != $3' | wc -l     # 0: equal
    (``-P``: without it the script's own folder comes first on the path, and its ``dedupe.py`` hides the package)

Reads every document stored in an embedded (tantivy) index — what ``unioncat build`` wrote — and prints
``id<TAB>sha256`` of three things made from it: the search document as stored (``_source``, *decoded*,
key order included: its bytes may change from ``json`` to orjson while the document may not), the
tantivy document the running version's :func:`index.embedded_doc.to_tantivy` makes of it (every field
and value in order: what tantivy indexes), and :func:`index.elastic.to_es` of it (Elasticsearch's
``_source``).  Documents missing from one side show up as unpaired lines in ``join``.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import tantivy

REPO = Path(__file__).resolve().parents[1]
if not os.environ.get("PYTHONPATH"):   # PYTHONPATH names the version under test (this script is not on main)
    sys.path.insert(0, str(REPO))

from index.elastic import to_es  # noqa: E402
from index.embedded import EmbeddedIndex  # noqa: E402
from index.embedded_doc import to_tantivy  # noqa: E402


def canonical(source: bytes) -> str:
    """The stored search document, the tantivy fields made of it and its Elasticsearch form, as one text."""
    doc = json.loads(source)
    fields = to_tantivy(doc).to_dict()
    fields["_source"] = [json.loads(bytes(b)) for b in fields["_source"]]
    return json.dumps([doc, fields, to_es(doc)], ensure_ascii=False)


def main() -> None:
    path, out = Path(sys.argv[1]), Path(sys.argv[2])
    started = time.process_time()
    index = EmbeddedIndex(path)
    searcher = index._searcher()
    hits = searcher.search(tantivy.Query.all_query(), limit=max(searcher.num_docs, 1)).hits
    with open(out, "w") as fh:
        for _, address in hits:
            doc = searcher.doc(address)
            text = canonical(bytes(doc.get_first("_source")))
            fh.write(f"{doc.get_first('id')}\t{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()}\n")
    print(f"{len(hits)} documents, {time.process_time() - started:.1f} CPU-s, load {os.getloadavg()[0]:.2f}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
