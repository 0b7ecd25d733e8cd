/**
 * Named shapes of the query API. Everything here is derived from `api.d.ts`, which
 * `npm run gen:types` generates from `openapi.json`; nothing is written by hand, so a change
 * to the API's document shows up as a type error where the dashboard uses the changed field.
 */
import type { components, paths } from "./api";

type Schemas = components["schemas"];

export type Summary = Schemas["Summary"];
export type Period = Schemas["Period"];
export type Timeseries = Schemas["Timeseries"];
export type Point = Schemas["Point"];
export type Campaigns = Schemas["Campaigns"];
export type CampaignRow = Schemas["CampaignRow"];
export type Breakdown = Schemas["Breakdown"];
export type BreakdownRow = Schemas["BreakdownRow"];
export type Live = Schemas["Live"];
export type Freshness = Schemas["Freshness"];
export type Granularity = Schemas["Granularity"];
export type Dimension = Schemas["Dimension"];
export type SortKey = Schemas["SortKey"];
export type Order = Schemas["Order"];

/** The counts, sums and ratios every metrics-bearing answer carries. */
export type Metrics = Pick<
  Period,
  | "impressions"
  | "clicks"
  | "conversions"
  | "spend_micros"
  | "revenue_micros"
  | "ctr"
  | "cvr"
  | "cpm"
  | "cpa"
  | "roas"
>;
export type MetricKey = keyof Metrics;

type Get<P extends keyof paths> = paths[P]["get"];

/** Paths whose GET answers JSON with status 200. */
export type JsonPath = {
  [P in keyof paths]: Get<P> extends { responses: { 200: { content: { "application/json": unknown } } } }
    ? P
    : never;
}[keyof paths];

/** The query parameters of a GET, exactly as the document declares them. */
export type QueryOf<P extends keyof paths> = Get<P> extends { parameters: { query?: infer Q } }
  ? [NonNullable<Q>] extends [never]
    ? Record<string, never>
    : NonNullable<Q>
  : never;

/** The JSON body of a 200 answer. */
export type ResponseOf<P extends JsonPath> = Get<P>["responses"][200]["content"]["application/json"];
