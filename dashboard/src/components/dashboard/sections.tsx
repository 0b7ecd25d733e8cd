/**
 * Server sections: each fetches its panel's first answer, so the page arrives with numbers in
 * it, and streams in on its own (Suspense) so a slow panel does not hold up the others.
 */
import { BreakdownPanel } from "@/components/breakdown/BreakdownPanel";
import { CampaignsTable } from "@/components/campaigns/CampaignsTable";
import { KpiCards } from "@/components/kpi/KpiCards";
import { KpiRow, KpiSkeleton } from "@/components/kpi/KpiRow";
import { FreshnessBadge } from "@/components/live/FreshnessBadge";
import { LivePanel } from "@/components/live/LivePanel";
import { Skeleton } from "@/components/Skeleton";
import { TimeseriesPanel } from "@/components/timeseries/TimeseriesPanel";
import {
  breakdownRequest,
  campaignLookupRequest,
  campaignsRequest,
  freshnessRequest,
  liveRequest,
  summaryRequest,
  timeseriesRequest,
} from "@/lib/api";
import { effectiveGranularity, type Window } from "@/lib/range";
import { load } from "@/lib/server-api";
import { PAGE_SIZE, type View } from "@/lib/view";
import type { Dimension } from "@/types";

interface SectionProps {
  view: View;
  window: Window;
  campaignId: number | null;
}

export async function KpiSection({ window, campaignId }: SectionProps) {
  return <KpiCards initial={await load(summaryRequest(window, campaignId))} campaignId={campaignId} />;
}

export function KpiFallback() {
  return (
    <KpiRow state="loading">
      <KpiSkeleton />
    </KpiRow>
  );
}

export async function TimeseriesSection({ view, window, campaignId }: SectionProps) {
  const req = timeseriesRequest(window, effectiveGranularity(window, view.granularity), campaignId);
  return <TimeseriesPanel initial={await load(req)} campaignId={campaignId} />;
}

export async function LiveSection() {
  return <LivePanel initial={await load(liveRequest())} />;
}

export async function BreakdownSection({ window, campaignId, by }: SectionProps & { by: Dimension }) {
  return <BreakdownPanel by={by} initial={await load(breakdownRequest(window, by, campaignId))} campaignId={campaignId} />;
}

export async function CampaignsSection({ view, window }: SectionProps) {
  const table = { q: view.q, sort: view.sort, order: view.order, limit: PAGE_SIZE, offset: (view.page - 1) * PAGE_SIZE };
  return <CampaignsTable initial={await load(campaignsRequest(window, table))} />;
}

export async function FreshnessSection() {
  return <FreshnessBadge initial={await load(freshnessRequest())} />;
}

/** The campaign's name, advertiser and status when it had events in the range. */
export async function CampaignHeading({ window, campaignId }: { window: Window; campaignId: number }) {
  const answer = await load(campaignLookupRequest(window, campaignId));
  const row = answer.data?.rows.find((r) => r.campaign_id === campaignId);
  return (
    <div className="page-heading" data-testid="campaign-heading">
      <h1>{row?.name ?? `Campaign #${campaignId}`}</h1>
      <p className="page-sub">
        {row ? (
          <>
            {row.advertiser ?? "Unknown advertiser"} · #{campaignId} ·{" "}
            <span className={`status status-${row.status ?? "unknown"}`}>{row.status ?? "unknown"}</span>
          </>
        ) : (
          `#${campaignId} · no events in this range`
        )}
      </p>
    </div>
  );
}

export function PanelFallback({ title, height, className = "" }: { title: string; height: number; className?: string }) {
  return (
    <section className={`card ${className}`} aria-label={title} aria-busy="true">
      <header className="card-head">
        <h2 className="card-title">{title}</h2>
      </header>
      <div className="card-body">
        <Skeleton height={height} />
      </div>
    </section>
  );
}
