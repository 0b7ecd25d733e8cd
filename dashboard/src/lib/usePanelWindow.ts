"use client";
import { useClock } from "./clock";
import { isLive, resolveWindow, type Window } from "./range";
import { useView } from "./useView";

/** The window every panel shows now, and whether it reaches the present (so it polls). */
export function usePanelWindow(): { window: Window; live: boolean } {
  const [view] = useView();
  const { now } = useClock();
  return { window: resolveWindow(view.range, now), live: isLive(view.range, now) };
}
