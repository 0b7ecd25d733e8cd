"use client";
import { useSearchParams } from "next/navigation";
import { useCallback, useMemo } from "react";
import { parseView, toSearch, viewParams, type View } from "./view";

/**
 * The view in the address bar, and a way to change it without reloading the page. Next.js
 * picks up history.pushState/replaceState, so components reading the URL re-render; the
 * server is not asked again, the panels fetch what they need.
 */
export function useView(): [View, (patch: Partial<View>, mode?: "push" | "replace") => void] {
  const params = useSearchParams();
  const view = useMemo(() => parseView(params), [params]);
  const setView = useCallback(
    (patch: Partial<View>, mode: "push" | "replace" = "replace") => {
      const next = parseView(new URLSearchParams(window.location.search));
      const url = `${window.location.pathname}${toSearch(viewParams({ ...next, ...patch }))}`;
      if (mode === "push") window.history.pushState(null, "", url);
      else window.history.replaceState(null, "", url);
    },
    [],
  );
  return [view, setView];
}
