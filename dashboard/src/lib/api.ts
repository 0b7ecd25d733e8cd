/**
 * The typed API client. Paths, parameters and answers come from `@/types` (generated from the
 * API's OpenAPI document), so a request the API would not understand does not compile.
 *
 * The browser only ever talks to its own origin: the dashboard's server forwards `/api/v1/*`
 * to the API and adds the API key there (see server-api.ts).
 */
import type { paths } from "@/types/api";
import type { Dimension, Granularity, JsonPath, Order, QueryOf, ResponseOf, SortKey } from "@/types";
import { toIso, type Window } from "./range";

/** A GET the dashboard makes: its path, its parameters and the same-origin URL they make. */
export interface ApiRequest<P extends JsonPath> {
  path: P;
  query: QueryOf<P>;
  /** Relative URL with parameters in a stable order: the key of cached and initial answers. */
  url: string;
}

/** An answer as panels receive it: the data, or a sentence saying what went wrong. */
export type Loaded<T> = { url: string; data: T; error?: undefined } | { url: string; data?: undefined; error: string };

type QueryValue = string | number | boolean | null | undefined;

export function buildUrl(path: string, query: Record<string, QueryValue> | undefined): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    if (value !== null && value !== undefined && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export function request<P extends JsonPath>(path: P, query: QueryOf<P>): ApiRequest<P> {
  return { path, query, url: buildUrl(path, query as Record<string, QueryValue>) };
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** The API's `detail` (a sentence, or FastAPI's list of validation problems) as one line. */
export function describeFailure(status: number, body: unknown): string {
  const detail = (body as { detail?: unknown } | null)?.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((d: { loc?: unknown[]; msg?: string }) => `${(d.loc ?? []).slice(1).join(".")}: ${d.msg ?? "invalid"}`)
      .join("; ");
  }
  if (status === 502 || status === 504) return "The adpulse API did not answer in time. Retrying.";
  return `The adpulse API answered HTTP ${status}.`;
}

/** GET a JSON answer; throws ApiError with the API's own explanation on failure. */
export async function getJson<P extends JsonPath>(
  req: ApiRequest<P>,
  init: { baseUrl?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<ResponseOf<P>> {
  let response: Response;
  try {
    response = await fetch(`${init.baseUrl ?? ""}${req.url}`, {
      headers: { Accept: "application/json", ...init.headers },
      signal: init.signal,
      cache: "no-store",
    });
  } catch (error) {
    if ((error as Error).name === "AbortError") throw error;
    throw new ApiError("The dashboard cannot reach its server. Check your connection.", 0);
  }
  const body: unknown = await response.json().catch((error: unknown) => {
    if ((error as Error).name === "AbortError") throw error;
    return null;
  });
  if (!response.ok) throw new ApiError(describeFailure(response.status, body), response.status);
  if (body === null || typeof body !== "object") {
    throw new ApiError("The adpulse API sent an answer that is not JSON. Retrying.", response.status);
  }
  return body as ResponseOf<P>;
}

// The dashboard's questions. Each panel asks one of these; the server asks the same ones
// for the first render, so both build them here.

export function summaryRequest(window: Window, campaignId: number | null) {
  return request("/api/v1/summary", {
    from: toIso(window.from),
    to: toIso(window.to),
    campaign_id: campaignId,
    compare: "previous",
  });
}

export function timeseriesRequest(window: Window, granularity: Granularity, campaignId: number | null) {
  return request("/api/v1/timeseries", {
    from: toIso(window.from),
    to: toIso(window.to),
    granularity,
    campaign_id: campaignId,
  });
}

export const BREAKDOWN_LIMIT = 8;

export function breakdownRequest(window: Window, by: Dimension, campaignId: number | null) {
  return request("/api/v1/breakdown", {
    from: toIso(window.from),
    to: toIso(window.to),
    by,
    campaign_id: campaignId,
    limit: BREAKDOWN_LIMIT,
  });
}

export interface TableQuery {
  q: string;
  sort: SortKey;
  order: Order;
  limit: number;
  offset: number;
}

export function campaignsRequest(window: Window, table: TableQuery) {
  return request("/api/v1/campaigns", {
    from: toIso(window.from),
    to: toIso(window.to),
    q: table.q || null,
    sort: table.sort,
    order: table.order,
    limit: table.limit,
    offset: table.offset,
  });
}

/** The campaign's own row: the API has no lookup by id, but `q` matches an exact id. */
export function campaignLookupRequest(window: Window, campaignId: number) {
  return campaignsRequest(window, { q: String(campaignId), sort: "campaign_id", order: "asc", limit: 500, offset: 0 });
}

type ExportQuery = QueryOf<"/api/v1/export.csv">;

/** Every row of the campaigns table as CSV (same range, search and order, no paging). */
export function exportUrl(window: Window, table: Pick<TableQuery, "q" | "sort" | "order">): string {
  const query: ExportQuery = {
    from: toIso(window.from),
    to: toIso(window.to),
    q: table.q || null,
    sort: table.sort,
    order: table.order,
  };
  const path: keyof paths = "/api/v1/export.csv";
  return buildUrl(path, query);
}

export function liveRequest() {
  return request("/api/v1/live", {});
}

export function freshnessRequest() {
  return request("/api/v1/freshness", {});
}
