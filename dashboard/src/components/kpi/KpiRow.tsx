import type { ReactNode } from "react";
import { Skeleton } from "@/components/Skeleton";
import type { PanelStatus } from "@/components/PanelState";
import { KPI_METRICS } from "@/lib/metrics";

// Shared by KpiCards and the server's Suspense fallback (dashboard/sections), so the row looks
// the same before and after hydration; static markup, hence no "use client".

/** The row of key figures around its cards, whatever its state. */
export function KpiRow({ state, url, children }: { state: PanelStatus; url?: string; children: ReactNode }) {
  return (
    <section
      className="kpis"
      aria-label="Key figures"
      aria-busy={state === "loading"}
      data-testid="kpi-cards"
      data-state={state}
      data-url={url}
    >
      {children}
    </section>
  );
}

/** One placeholder card per key figure, until the first answer. */
export function KpiSkeleton() {
  return KPI_METRICS.map((metric) => (
    <div className="kpi" key={metric}>
      <Skeleton height={14} width="40%" />
      <Skeleton height={30} width="70%" />
      <Skeleton height={12} width="55%" />
    </div>
  ));
}
