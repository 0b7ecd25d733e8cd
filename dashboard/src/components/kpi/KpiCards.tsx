"use client";
import { Skeleton } from "@/components/Skeleton";
import { StateMessage } from "@/components/StateMessage";
import { summaryRequest, type Loaded } from "@/lib/api";
import { KPI_METRICS } from "@/lib/metrics";
import { describeSpan } from "@/lib/range";
import { usePanelWindow } from "@/lib/usePanelWindow";
import { usePolled } from "@/lib/usePolled";
import type { Summary } from "@/types";
import { KpiCard } from "./KpiCard";

/** The eight headline cards for the range (and campaign), each against the previous period. */
export function KpiCards({ initial, campaignId }: { initial?: Loaded<Summary>; campaignId: number | null }) {
  const { window, live } = usePanelWindow();
  const req = summaryRequest(window, campaignId);
  const { data, error, stale, retry } = usePolled(req, initial, live);
  const state = data ? (stale ? "loading" : "ready") : error ? "error" : "loading";
  return (
    <section
      className="kpis"
      aria-label="Key figures"
      aria-busy={state === "loading"}
      data-testid="kpi-cards"
      data-state={state}
      data-url={data && !stale ? req.url : undefined}
    >
      {data ? (
        KPI_METRICS.map((metric) => (
          <KpiCard
            key={metric}
            metric={metric}
            current={data}
            previous={data.previous}
            against={describeSpan(window)}
          />
        ))
      ) : error ? (
        <div className="kpis-error">
          <StateMessage kind="error" title="Key figures are unavailable" onRetry={retry}>
            {error}
          </StateMessage>
        </div>
      ) : (
        KPI_METRICS.map((metric) => (
          <div className="kpi" key={metric}>
            <Skeleton height={14} width="40%" />
            <Skeleton height={30} width="70%" />
            <Skeleton height={12} width="55%" />
          </div>
        ))
      )}
    </section>
  );
}
