"use client";
/**
 * The dashboard's shared clock: one 10 s tick that every polling panel follows, so that the
 * cards, the chart and the table always show the same window. It starts at the server's
 * `now`, so the first browser render asks exactly what the server already answered.
 */
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";

export const POLL_INTERVAL_MS = 10_000;

interface Clock {
  /** Milliseconds since the epoch at the last tick. */
  now: number;
  /** Increments every tick: a dependency that makes panels poll. */
  tick: number;
  /** Tick now, e.g. after the range changed. */
  refresh: () => void;
}

const ClockContext = createContext<Clock>({ now: 0, tick: 0, refresh: () => {} });

export function ClockProvider({
  serverNow,
  intervalMs = POLL_INTERVAL_MS,
  children,
}: {
  serverNow: number;
  intervalMs?: number;
  children: ReactNode;
}) {
  const [state, setState] = useState({ now: serverNow, tick: 0 });
  const refresh = useCallback(() => setState((s) => ({ now: Date.now(), tick: s.tick + 1 })), []);

  useEffect(() => {
    // Hidden tabs do not poll; coming back refreshes at once.
    const timer = setInterval(() => {
      if (!document.hidden) refresh();
    }, intervalMs);
    const onVisible = () => {
      if (!document.hidden) refresh();
    };
    document.addEventListener("visibilitychange", onVisible);
    return () => {
      clearInterval(timer);
      document.removeEventListener("visibilitychange", onVisible);
    };
  }, [intervalMs, refresh]);

  const value = useMemo(() => ({ ...state, refresh }), [state, refresh]);
  return <ClockContext.Provider value={value}>{children}</ClockContext.Provider>;
}

export function useClock(): Clock {
  return useContext(ClockContext);
}
