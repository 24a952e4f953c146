"""Baseline for the routing benchmark: bare Litestar + an asyncpg pool, the same SQL as
``GET /api/zones`` with the schema written into the query, no routing, no registry,
no middleware. Run: python scripts/bench/bare_app.py DSN SCHEMA PORT"""

from __future__ import annotations

import sys
from typing import Any

import asyncpg
import uvicorn
from litestar import Litestar, get

DSN, SCHEMA, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
SQL = f'SELECT id, name, lat, lng, radius_m, created_at FROM "{SCHEMA}".zones ORDER BY created_at, id LIMIT 51'
pool: asyncpg.Pool | None = None


async def startup() -> None:
    global pool
    pool = await asyncpg.create_pool(DSN, min_size=10, max_size=10)


@get("/api/zones")
async def zones() -> dict[str, Any]:
    assert pool is not None
    async with pool.acquire() as conn:
        rows = await conn.fetch(SQL)
    items = [dict(r) for r in rows[:50]]
    return {"items": items, "next_cursor": None}


app = Litestar([zones], on_startup=[startup])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=PORT, access_log=False, log_level="warning")
