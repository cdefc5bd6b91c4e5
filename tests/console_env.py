"""A consortium of 130 (or 1,300) members with a year of daily harvest runs, for the overview's tests
and ``bench/staff.py``.

``write_sources(folder, n)`` writes a ``sources.yaml`` (five regions, two groups, every seventh member
named in Chinese); ``fill_runs(engine, n, days)`` stores ``days`` daily runs per member straight into the
run tables (a year of runs through ``RunStore`` would take minutes).  Member ``i``'s newest successful
run is ``1 + i % 7`` days old, so lags differ; every ninth member then failed three times (``failing``).
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import yaml
from sqlalchemy import insert

from harvester.stores.runs import harvest_runs, record_counts
from storage.db import utcnow

REGIONS = ["Nanjing", "Suzhou", "Wuxi", "Changzhou", "Xuzhou"]
ZH_NAMES = ["南京大学图书馆", "苏州大学图书馆", "江南大学图书馆", "常州大学图书馆", "江苏师范大学图书馆"]


def member_id(i: int) -> str:
    return f"m{i:04d}"


def is_failing(i: int) -> bool:
    return i % 9 == 0


def region_of(i: int) -> str:
    return REGIONS[i % len(REGIONS)]


def write_sources(folder: Path, members: int) -> Path:
    sources = []
    for i in range(members):
        name = f"{ZH_NAMES[i % 5]}{i}" if i % 7 == 0 else f"{region_of(i)} College {i} Library"
        sources.append({"id": member_id(i), "name": name, "region": region_of(i), "protocol": "file",
                        "path": f"dumps/{member_id(i)}.mrc", "schedule": "daily"})
    config = {"consortium": {"name": "Jiangsu test consortium"}, "regions": REGIONS, "sources": sources,
              "groups": [{"id": "teachers", "name": "Normal universities", "members": [member_id(i) for i in range(0, members, 4)]},
                         {"id": "medical", "name": "Medical libraries", "members": [member_id(i) for i in range(1, members, 10)]}]}
    path = folder / "sources.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def fill_runs(engine, members: int, days: int = 365) -> None:
    """``days`` daily runs per member and the record count after each; see the module's docstring."""
    now = utcnow()
    with engine.begin() as conn:
        for i in range(members):
            source, newest_ok = member_id(i), now - timedelta(days=1 + i % 7)
            starts = [newest_ok - timedelta(days=d) for d in range(days - 1, -1, -1)]
            statuses = ["failed" if d % 30 == 29 else "ok" for d in range(days)]
            statuses[-1] = "ok"
            if is_failing(i):
                starts += [newest_ok + timedelta(hours=6 * k) for k in (1, 2, 3)]
                statuses += ["failed"] * 3
            conn.execute(insert(harvest_runs), [dict(
                source=source, protocol="file", full=True, status=status, started_at=start,
                finished_at=start + timedelta(seconds=30 + i % 50), added=5, updated=3, deleted=1, unchanged=100,
                quarantined=0, resumed=False, error="connection refused" if status == "failed" else None)
                for start, status in zip(starts, statuses)])
            conn.execute(insert(record_counts), [dict(source=source, run_id=None, at=start, records=1000 + 3 * d + i)
                                                 for d, start in enumerate(starts)])
