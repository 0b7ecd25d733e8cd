/** The metric catalogue: how each API field is named, formatted and judged. Pure. */
import type { MetricKey } from "@/types";
import {
  formatCount,
  formatInteger,
  formatMoney,
  formatMoneyCompact,
  formatMultiple,
  formatPercent,
} from "./format";

export interface MetricSpec {
  key: MetricKey;
  /** The name in URLs: `spend`, not `spend_micros`. */
  slug: string;
  label: string;
  /** What the number is, for titles and screen readers. */
  description: string;
  /** Headline text: compact for large numbers. */
  format: (value: number | null | undefined) => string;
  /** Every digit, for tables and tooltips. */
  formatExact: (value: number | null | undefined) => string;
  /** Whether a rise is good news (CPA is a cost per result: lower is better). */
  higherIsBetter: boolean;
}

const SPECS: readonly MetricSpec[] = [
  {
    key: "impressions",
    slug: "impressions",
    label: "Impressions",
    description: "Ads shown",
    format: formatCount,
    formatExact: formatInteger,
    higherIsBetter: true,
  },
  {
    key: "clicks",
    slug: "clicks",
    label: "Clicks",
    description: "Clicks on ads",
    format: formatCount,
    formatExact: formatInteger,
    higherIsBetter: true,
  },
  {
    key: "conversions",
    slug: "conversions",
    label: "Conversions",
    description: "Conversions attributed to ads",
    format: formatCount,
    formatExact: formatInteger,
    higherIsBetter: true,
  },
  {
    key: "spend_micros",
    slug: "spend",
    label: "Spend",
    description: "Cost of the impressions",
    format: formatMoneyCompact,
    formatExact: formatMoney,
    higherIsBetter: true,
  },
  {
    key: "revenue_micros",
    slug: "revenue",
    label: "Revenue",
    description: "Value of the conversions",
    format: formatMoneyCompact,
    formatExact: formatMoney,
    higherIsBetter: true,
  },
  {
    key: "ctr",
    slug: "ctr",
    label: "CTR",
    description: "Click-through rate: clicks per impression",
    format: formatPercent,
    formatExact: formatPercent,
    higherIsBetter: true,
  },
  {
    key: "cvr",
    slug: "cvr",
    label: "CVR",
    description: "Conversion rate: conversions per click",
    format: formatPercent,
    formatExact: formatPercent,
    higherIsBetter: true,
  },
  {
    key: "cpm",
    slug: "cpm",
    label: "CPM",
    description: "Cost per thousand impressions",
    format: formatMoney,
    formatExact: formatMoney,
    higherIsBetter: false,
  },
  {
    key: "cpa",
    slug: "cpa",
    label: "CPA",
    description: "Cost per acquisition: spend per conversion",
    format: formatMoney,
    formatExact: formatMoney,
    higherIsBetter: false,
  },
  {
    key: "roas",
    slug: "roas",
    label: "ROAS",
    description: "Return on ad spend: revenue per dollar spent",
    format: formatMultiple,
    formatExact: formatMultiple,
    higherIsBetter: true,
  },
];

export const METRICS: Readonly<Record<MetricKey, MetricSpec>> = Object.fromEntries(
  SPECS.map((spec) => [spec.key, spec]),
) as Record<MetricKey, MetricSpec>;

/** The eight headline cards, in reading order. */
export const KPI_METRICS: readonly MetricKey[] = [
  "impressions",
  "clicks",
  "conversions",
  "spend_micros",
  "ctr",
  "cvr",
  "cpa",
  "roas",
];

/** Metrics the time-series chart can draw. */
export const CHART_METRICS: readonly MetricKey[] = SPECS.map((s) => s.key);
export const DEFAULT_CHART_METRIC: MetricKey = "impressions";

export function metricBySlug(slug: string | null): MetricKey | null {
  return SPECS.find((s) => s.slug === slug)?.key ?? null;
}

export type Tone = "good" | "bad" | "neutral";

/** Whether a change is good or bad news for this metric. */
export function toneOf(key: MetricKey, change: number | null): Tone {
  if (change === null || Math.abs(change) < 0.0005) return "neutral";
  return change > 0 === METRICS[key].higherIsBetter ? "good" : "bad";
}
