"""The last days' rollups, every campaign's sums per hour, held in this process.

Why: on chDB a table read costs ~5 ms of CPU however few rows it returns, a dashboard question
reads one to three tables, and 32 dashboards at once queued on two cores (miss P95 0.5 s). Yet
questions about the last days share nearly all their data: "the last 24 h" asked a minute
later differs only in its two edge minutes, and every campaign's drill-down reads the same
hours. So recent blocks are read once for all campaigns, and questions are answered by adding
arrays. Questions that blocks should not answer (too old, too many hours by minute) go to
ClickHouse as before.

Staleness: a block is used for `ttl_s` after it was read, and an answer built from it is
cached only until its oldest block's time is up, so answers are never staler than the answer
cache alone allows.

- `blocks`: what a block holds, its key, campaign slots, and which blocks cover a question;
- `arrays`: the numpy maths, rows into blocks and blocks into answers, no I/O;
- `reads`: the queries that read blocks, and what they cost;
- `store`: blocks kept by bytes, reads shared by concurrent questions, refresh-ahead;
- `rollups`: `HotRollups`, the answers, built on the four.
"""

from api.hot.rollups import HotRollups

__all__ = ["HotRollups"]
