/** Answers shaped like the API's, for component tests. */
import type { CampaignRow, Campaigns, Freshness, Metrics, Summary } from "@/types";

export function metrics(overrides: Partial<Metrics> = {}): Metrics {
  return {
    impressions: 1_234_567,
    clicks: 16_049,
    conversions: 642,
    spend_micros: 3_456_780_000,
    revenue_micros: 14_250_000_000,
    ctr: 0.013,
    cvr: 0.04,
    cpm: 2_800_000,
    cpa: 5_384_392,
    roas: 4.1224,
    ...overrides,
  };
}

export function summary(from: string, to: string, previous?: Partial<Metrics>): Summary {
  return {
    from,
    to,
    ...metrics(),
    previous: previous ? { from: "2026-11-27T12:00:00Z", to: from, ...metrics(previous) } : undefined,
  };
}

export function campaignRow(id: number, overrides: Partial<CampaignRow> = {}): CampaignRow {
  return {
    campaign_id: id,
    name: `Campaign ${id}`,
    advertiser: `Advertiser ${id % 3}`,
    status: "active",
    daily_budget_micros: null,
    ...metrics({ impressions: 1000 * id, clicks: 10 * id }),
    ...overrides,
  };
}

export function campaigns(rows: CampaignRow[], total = rows.length): Campaigns {
  return { from: "2026-11-27T13:06:00Z", to: "2026-11-27T14:06:00Z", total, limit: 25, offset: 0, rows };
}

export function freshness(lag: number | null): Freshness {
  return {
    newest_event_time: lag === null ? null : "2026-11-27T14:05:39Z",
    lag_seconds: lag,
    checked_at: "2026-11-27T14:05:42Z",
  };
}
