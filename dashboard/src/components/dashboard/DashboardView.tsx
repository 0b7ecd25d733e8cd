import Link from "next/link";
import { Suspense } from "react";
import { RangePicker } from "@/components/range/RangePicker";
import { ClockProvider } from "@/lib/clock";
import { resolveWindow } from "@/lib/range";
import { rangeParams, toSearch, type View } from "@/lib/view";
import {
  BreakdownSection,
  CampaignHeading,
  CampaignsSection,
  FreshnessSection,
  KpiFallback,
  KpiSection,
  LiveSection,
  PanelFallback,
  TimeseriesSection,
} from "./sections";

/**
 * The whole page: header, range, cards, chart, live panel, breakdowns and (on the overview)
 * the campaigns table. With a campaign id every panel is filtered to that campaign.
 */
export function DashboardView({ view, now, campaignId }: { view: View; now: number; campaignId: number | null }) {
  const window = resolveWindow(view.range, now);
  const props = { view, window, campaignId };
  return (
    <ClockProvider serverNow={now}>
      <header className="topbar">
        <div className="topbar-inner">
          <Link href={`/${toSearch(rangeParams(view.range))}`} className="brand" aria-label="adpulse overview">
            <svg width="22" height="22" viewBox="0 0 24 24" aria-hidden="true">
              <path d="M2 13h4l3-8 4 14 3-9 2 3h4" fill="none" stroke="currentColor" strokeWidth="2.4" strokeLinecap="round" strokeLinejoin="round" />
            </svg>
            adpulse
          </Link>
          <Suspense fallback={<p className="badge badge-unknown">Checking data freshness…</p>}>
            <FreshnessSection />
          </Suspense>
        </div>
      </header>
      <main id="main" className="page">
        {campaignId === null ? (
          <div className="page-heading">
            <h1>Overview</h1>
            <p className="page-sub">All campaigns. Times in UTC.</p>
          </div>
        ) : (
          <>
            <nav aria-label="Breadcrumb" className="crumbs">
              <Link href={`/${toSearch(rangeParams(view.range))}`}>← All campaigns</Link>
            </nav>
            <Suspense fallback={<div className="page-heading"><h1>Campaign #{campaignId}</h1></div>}>
              <CampaignHeading window={window} campaignId={campaignId} />
            </Suspense>
          </>
        )}
        <div className="toolbar">
          <RangePicker />
        </div>
        <Suspense fallback={<KpiFallback />}>
          <KpiSection {...props} />
        </Suspense>
        <div className={campaignId === null ? "grid-main" : "grid-main grid-single"}>
          <Suspense fallback={<PanelFallback title="Over time" height={260} className="panel-chart" />}>
            <TimeseriesSection {...props} />
          </Suspense>
          {campaignId === null ? (
            <Suspense fallback={<PanelFallback title="Live" height={220} className="panel-live" />}>
              <LiveSection />
            </Suspense>
          ) : null}
        </div>
        <div className="grid-two">
          <Suspense fallback={<PanelFallback title="By country" height={200} />}>
            <BreakdownSection {...props} by="country" />
          </Suspense>
          <Suspense fallback={<PanelFallback title="By device" height={200} />}>
            <BreakdownSection {...props} by="device_type" />
          </Suspense>
        </div>
        {campaignId === null ? (
          <Suspense fallback={<PanelFallback title="Campaigns" height={320} />}>
            <CampaignsSection {...props} />
          </Suspense>
        ) : null}
      </main>
    </ClockProvider>
  );
}
