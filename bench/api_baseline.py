"""The baseline `bench api` measures beside the API, in the same run on the same machine.

A minimal FastAPI app on the API's server stack (uvicorn, with the options `api.server` gives
it) whose one route answers a fixed JSON body the size of the API's cache hits, driven by the
same load generator at the same concurrency. Its requests/s is the floor of what a hit can
cost on this machine; the API's hits are reported as a multiple of it. CPU is the serving
process's own (user + system, from /proc), over the requests it served.
"""

from __future__ import annotations

from typing import Any

# Issue 15's targets, as ratios on whatever machine runs them.
TARGET_HITS_VS_BASELINE = 1.0  # hits/s at concurrency 32 over the minimal app's requests/s
TARGET_MISS_VS_HIT_CPU = 5.0  # CPU-ms per miss over CPU-ms per hit


def fixed_body(size: int) -> bytes:
    """A JSON object of exactly `size` bytes (at least 12)."""
    head, tail = b'{"pad":"', b'"}'
    return head + b"x" * max(size - len(head) - len(tail), 0) + tail


def serve_fixed(port: int, size: int) -> None:
    """Serve `fixed_body(size)` on every GET path, with the API's uvicorn options."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import Response

    body = fixed_body(size)
    app = FastAPI()

    @app.get("/{path:path}")
    async def answer(path: str) -> Response:
        return Response(body, media_type="application/json")

    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=True,
        server_header=False,
    )  # fmt: skip
    uvicorn.Server(config).run()


def cpu_per_request(phases: list[dict[str, Any]]) -> None:
    """Add CPU-ms per hit and per miss to each concurrency's phases, in place.

    A hits phase is nearly all hits: its CPU over its requests is the CPU of a hit. A misses
    phase has some hits too (answers asked twice, expired live answers): their share, at the
    hit cost of the same concurrency, is taken out before dividing by the misses.
    """
    by_level: dict[int, dict[str, dict[str, Any]]] = {}
    for p in phases:
        by_level.setdefault(p["concurrency"], {})[p["phase"]] = p
    for level in by_level.values():
        hits, misses = level.get("hits"), level.get("misses")
        if hits is None or "server_cpu_ms" not in hits or not hits["requests"]:
            continue
        per_hit = hits["server_cpu_ms"] / hits["requests"]
        hits["cpu_ms_per_hit"] = round(per_hit, 3)
        if misses is None or "server_cpu_ms" not in misses:
            continue
        n_miss, n_hit = misses["miss_ms"]["count"], misses["hit_ms"]["count"]
        if n_miss:
            per_miss = max(misses["server_cpu_ms"] - n_hit * per_hit, 0.0) / n_miss
            misses["cpu_ms_per_miss"] = round(per_miss, 3)
            misses["miss_vs_hit_cpu"] = round(per_miss / per_hit, 2) if per_hit else None
