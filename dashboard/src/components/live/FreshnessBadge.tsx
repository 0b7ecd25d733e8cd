"use client";
import { useEffect, useState } from "react";
import { freshnessRequest, type Loaded } from "@/lib/api";
import { formatAge } from "@/lib/format";
import { usePolled } from "@/lib/usePolled";
import type { Freshness } from "@/types";

/** Past this lag the badge warns: ingest flushes every 5 s, so a minute means it is stuck. */
export const FRESHNESS_WARN_S = 60;

export type FreshnessLevel = "ok" | "warn" | "error" | "unknown";

/** What the badge says, from the API's answer and the seconds since it was fetched. Pure. */
export function describeFreshness(
  data: Freshness | undefined,
  error: string | undefined,
  elapsedS: number,
): { level: FreshnessLevel; text: string; title: string } {
  if (!data) {
    return error
      ? { level: "error", text: "API unreachable", title: error }
      : { level: "unknown", text: "Checking data freshness…", title: "" };
  }
  if (data.lag_seconds === null || data.newest_event_time === null) {
    return { level: "warn", text: "No data yet", title: "No events have been stored yet" };
  }
  const age = Math.max(0, data.lag_seconds) + elapsedS;
  const title = `Newest event stored: ${data.newest_event_time}`;
  if (age > FRESHNESS_WARN_S) {
    return { level: "warn", text: `Data is ${formatAge(age)} old: ingest may be behind`, title };
  }
  return { level: "ok", text: `Data as of ${formatAge(age)} ago`, title };
}

/** "Data as of 3 s ago", polled every 10 s and counted up every second in between. */
export function FreshnessBadge({ initial }: { initial?: Loaded<Freshness> }) {
  const { data, error } = usePolled(freshnessRequest(), initial, true);
  const [elapsed, setElapsed] = useState(0);
  useEffect(() => {
    setElapsed(0);
    const started = Date.now();
    const timer = setInterval(() => setElapsed((Date.now() - started) / 1000), 1000);
    return () => clearInterval(timer);
  }, [data]);
  const { level, text, title } = describeFreshness(data, error, elapsed);
  return (
    <p className={`badge badge-${level}`} title={title} data-testid="freshness" data-level={level}>
      <span className="badge-dot" aria-hidden="true" />
      {text}
    </p>
  );
}
