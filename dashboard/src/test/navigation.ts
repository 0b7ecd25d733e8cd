/**
 * A stand-in for next/navigation's useSearchParams that follows window.location, the way
 * Next.js does once history.pushState/replaceState are called. Use with
 * `vi.mock("next/navigation", () => import("@/test/navigation"))`.
 */
import { useSyncExternalStore } from "react";

const listeners = new Set<() => void>();

for (const method of ["pushState", "replaceState"] as const) {
  const original = window.history[method].bind(window.history);
  window.history[method] = (...args: Parameters<History["pushState"]>) => {
    original(...args);
    for (const listener of listeners) listener();
  };
}

export function useSearchParams(): URLSearchParams {
  const search = useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => window.location.search,
  );
  return new URLSearchParams(search);
}
