"use client";
import { PanelState, panelStatus } from "@/components/PanelState";
import { summaryRequest, type Loaded } from "@/lib/api";
import { KPI_METRICS } from "@/lib/metrics";
import { describeSpan } from "@/lib/range";
import { usePanelWindow } from "@/lib/usePanelWindow";
import { usePolled } from "@/lib/usePolled";
import type { Summary } from "@/types";
import { KpiCard } from "./KpiCard";
import { KpiRow, KpiSkeleton } from "./KpiRow";

/** The eight headline cards for the range (and campaign), each against the previous period. */
export function KpiCards({ initial, campaignId }: { initial?: Loaded<Summary>; campaignId: number | null }) {
  const { window, live } = usePanelWindow();
  const req = summaryRequest(window, campaignId);
  const { data, error, stale, retry } = usePolled(req, initial, live);
  return (
    <KpiRow state={panelStatus({ data, error, stale })} url={data && !stale ? req.url : undefined}>
      {/* The cards are grid cells: no room for a warning above them, so a failed refresh is silent. */}
      <PanelState
        data={data}
        error={error}
        onRetry={retry}
        skeleton={<KpiSkeleton />}
        errorTitle="Key figures are unavailable"
        warnOnError={false}
        messageClassName="kpis-error"
      >
        {(data) =>
          KPI_METRICS.map((metric) => (
            <KpiCard
              key={metric}
              metric={metric}
              current={data}
              previous={data.previous}
              against={describeSpan(window)}
            />
          ))
        }
      </PanelState>
    </KpiRow>
  );
}
