/**
 * What the dashboard shows, as URL query parameters, so that a view can be shared. Pure.
 * Parameters at their defaults are left out of the URL; unreadable ones fall back to defaults.
 *
 *   range=15m|1h|24h|7d|30d|custom (custom needs from and to, RFC 3339)
 *   g=minute|hour|day   metric=impressions|clicks|…|roas
 *   q=search  sort=<column>  order=asc|desc  page=1…
 */
import type { Granularity, MetricKey, Order, SortKey } from "@/types";
import { DEFAULT_CHART_METRIC, METRICS, metricBySlug } from "./metrics";
import { checkCustom, DEFAULT_RANGE, GRANULARITIES, isPresetKey, toIso, type RangeChoice } from "./range";

export interface View {
  range: RangeChoice;
  /** null: let the range choose. */
  granularity: Granularity | null;
  metric: MetricKey;
  q: string;
  sort: SortKey;
  order: Order;
  /** 1-based. */
  page: number;
}

export interface ParamSource {
  get(name: string): string | null;
}

export const PAGE_SIZE = 25;
export const SORT_KEYS: readonly SortKey[] = [
  "campaign_id",
  "name",
  "advertiser",
  "status",
  "impressions",
  "clicks",
  "conversions",
  "spend_micros",
  "revenue_micros",
  "ctr",
  "cvr",
  "cpm",
  "cpa",
  "roas",
];
export const DEFAULT_VIEW: View = {
  range: DEFAULT_RANGE,
  granularity: null,
  metric: DEFAULT_CHART_METRIC,
  q: "",
  sort: "spend_micros",
  order: "desc",
  page: 1,
};

/** Characters the API refuses in a search (see its `q` parameter); dropped as people type. */
const REFUSED_IN_SEARCH = /[\x00-\x1f\x7f'";=*\\%<>(){}[\]`$|]/g;
export const MAX_SEARCH = 100;

export function cleanSearch(text: string): string {
  return text.replace(REFUSED_IN_SEARCH, "").slice(0, MAX_SEARCH).trim();
}

function parseRange(params: ParamSource): RangeChoice {
  const range = params.get("range");
  if (range && isPresetKey(range)) return { kind: "preset", key: range };
  if (range === "custom") {
    const from = params.get("from");
    const to = params.get("to");
    const checked = checkCustom(from ? new Date(from) : null, to ? new Date(to) : null);
    if (checked.ok) return checked.range;
  }
  return DEFAULT_RANGE;
}

export function parseView(params: ParamSource): View {
  const g = params.get("g");
  const sort = params.get("sort");
  const order = params.get("order");
  const page = Number(params.get("page") ?? "1");
  return {
    range: parseRange(params),
    granularity: GRANULARITIES.find((x) => x === g) ?? null,
    metric: metricBySlug(params.get("metric")) ?? DEFAULT_VIEW.metric,
    q: cleanSearch(params.get("q") ?? ""),
    sort: SORT_KEYS.find((k) => k === sort) ?? DEFAULT_VIEW.sort,
    order: order === "asc" || order === "desc" ? order : DEFAULT_VIEW.order,
    page: Number.isInteger(page) && page >= 1 && page <= 100_000 ? page : 1,
  };
}

/** The range's own parameters, for links that keep the range (a campaign page and back). */
export function rangeParams(range: RangeChoice): URLSearchParams {
  const out = new URLSearchParams();
  if (range.kind === "custom") {
    out.set("range", "custom");
    out.set("from", toIso(range.from));
    out.set("to", toIso(range.to));
  } else if (range.key !== (DEFAULT_RANGE.kind === "preset" ? DEFAULT_RANGE.key : "")) {
    out.set("range", range.key);
  }
  return out;
}

export function viewParams(view: View): URLSearchParams {
  const out = rangeParams(view.range);
  if (view.granularity) out.set("g", view.granularity);
  if (view.metric !== DEFAULT_VIEW.metric) out.set("metric", METRICS[view.metric].slug);
  if (view.q) out.set("q", view.q);
  if (view.sort !== DEFAULT_VIEW.sort) out.set("sort", view.sort);
  if (view.order !== DEFAULT_VIEW.order) out.set("order", view.order);
  if (view.page !== 1) out.set("page", String(view.page));
  return out;
}

/** `?a=1&b=2`, or "" when every parameter is at its default. */
export function toSearch(params: URLSearchParams): string {
  const text = params.toString();
  return text ? `?${text}` : "";
}

/** Next.js hands pages their query as a record; the first value of a repeated name wins. */
export function paramsFromRecord(record: Record<string, string | string[] | undefined>): URLSearchParams {
  const out = new URLSearchParams();
  for (const [name, value] of Object.entries(record)) {
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) out.set(name, first);
  }
  return out;
}
