"use client";
import { useEffect, useRef, useState } from "react";
import { ApiError, getJson, type ApiRequest, type Loaded } from "./api";
import { useClock } from "./clock";
import type { JsonPath, ResponseOf } from "@/types";

export interface Polled<T> {
  /** The newest answer, possibly to an earlier question while a new one is on its way. */
  data: T | undefined;
  /** Why the newest attempt failed, if it did. */
  error: string | undefined;
  /** An answer to the current question is on its way. */
  loading: boolean;
  /** The data shown answers a different (earlier) question than the current one. */
  stale: boolean;
  retry: () => void;
}

interface Settled<T> {
  url: string;
  data: T | undefined;
  error: string | undefined;
}

/**
 * Fetch `req` from the dashboard's origin, again whenever it changes, and on every clock tick
 * when `live`. Starts from `initial` (the server's answer) when it answers the same URL.
 */
export function usePolled<P extends JsonPath>(
  req: ApiRequest<P> | null,
  initial: Loaded<ResponseOf<P>> | undefined,
  live: boolean,
): Polled<ResponseOf<P>> {
  const { tick } = useClock();
  const url = req?.url ?? null;
  const [settled, setSettled] = useState<Settled<ResponseOf<P>> | null>(() =>
    initial && initial.url === url ? { url: initial.url, data: initial.data, error: initial.error } : null,
  );
  const [loading, setLoading] = useState(settled === null && url !== null);
  const [attempt, setAttempt] = useState(0);
  const reqRef = useRef(req);
  reqRef.current = req;
  const asked = useRef<{ url: string | null; tick: number; attempt: number } | null>(
    settled ? { url, tick, attempt: 0 } : null,
  );

  const pollTick = live ? tick : 0;
  useEffect(() => {
    const current = reqRef.current;
    if (!current) return;
    const last = asked.current;
    if (last && last.url === current.url && last.tick === pollTick && last.attempt === attempt) return;
    asked.current = { url: current.url, tick: pollTick, attempt };
    const controller = new AbortController();
    setLoading(true);
    getJson(current, { signal: controller.signal })
      .then((data) => {
        if (controller.signal.aborted) return; // a newer question replaced this one
        setSettled({ url: current.url, data, error: undefined });
        setLoading(false);
      })
      .catch((error: unknown) => {
        if (controller.signal.aborted) return;
        const message = error instanceof ApiError ? error.message : "The request failed.";
        // A failed poll keeps the last good answer on screen, marked with the failure.
        setSettled((prev) => ({ url: current.url, data: prev?.data, error: message }));
        setLoading(false);
      });
    return () => {
      controller.abort();
      // An aborted question is asked again when the effect next runs (React's strict mode).
      asked.current = null;
    };
  }, [url, pollTick, attempt]);

  return {
    data: settled?.data,
    error: settled?.error,
    loading,
    stale: settled !== null && settled.url !== url,
    retry: () => setAttempt((n) => n + 1),
  };
}
