/**
 * The dashboard server's side of the API: where it is, the key it holds, the first-render
 * fetches and the same-origin proxy. `server-only` makes a build fail if a browser bundle
 * imports this file, so the key cannot reach the browser through it.
 */
import "server-only";
import type { JsonPath, ResponseOf } from "@/types";
import { ApiError, getJson, type ApiRequest, type Loaded } from "./api";

export interface ApiConfig {
  /** e.g. http://127.0.0.1:8000, without a trailing slash. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>`; null in local mode, where the API runs open. */
  key: string | null;
}

type Env = Record<string, string | undefined>;

/** The one place the dashboard reads its environment. */
export function apiConfig(env: Env = process.env): ApiConfig {
  const baseUrl = (env.ADPULSE_API_URL || "http://127.0.0.1:8000").replace(/\/+$/, "");
  return { baseUrl, key: env.ADPULSE_API_KEY || null };
}

function authHeaders(config: ApiConfig): Record<string, string> {
  return config.key ? { Authorization: `Bearer ${config.key}` } : {};
}

const FIRST_RENDER_TIMEOUT_MS = 8_000;

/** Fetch an answer for the first render; failures become a message the panel shows. */
export async function load<P extends JsonPath>(
  req: ApiRequest<P>,
  config: ApiConfig = apiConfig(),
): Promise<Loaded<ResponseOf<P>>> {
  try {
    const data = await getJson(req, {
      baseUrl: config.baseUrl,
      headers: authHeaders(config),
      signal: AbortSignal.timeout(FIRST_RENDER_TIMEOUT_MS),
    });
    return { url: req.url, data };
  } catch (error) {
    return { url: req.url, error: explain(error, config) };
  }
}

function explain(error: unknown, config: ApiConfig): string {
  if (error instanceof ApiError && error.status !== 0) return error.message;
  if ((error as Error).name === "TimeoutError") return "The adpulse API did not answer in time.";
  console.error(`adpulse API at ${config.baseUrl} does not answer:`, error);
  return "The adpulse API does not answer. Is it running?";
}

/** Path segments the proxy forwards: API route names, nothing that could climb out. */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** Answer headers worth passing on to the browser. */
const FORWARDED = ["content-type", "content-disposition", "x-cache", "cache-control", "retry-after"];

export interface Upstream {
  url: string;
  headers: Record<string, string>;
}

/** The API request behind a browser's GET /api/v1/<segments>?<search>, or null if refused. */
export function upstreamFor(segments: readonly string[], search: string, config: ApiConfig): Upstream | null {
  if (segments.length === 0 || !segments.every((s) => SEGMENT.test(s) && !s.includes(".."))) return null;
  return {
    url: `${config.baseUrl}/api/v1/${segments.join("/")}${search}`,
    headers: { Accept: "application/json, text/csv", ...authHeaders(config) },
  };
}

function problem(status: number, detail: string): Response {
  return Response.json({ detail }, { status, headers: { "cache-control": "no-store" } });
}

/** Forward one GET to the API with the server's key; the browser never sees the key. */
export async function proxy(
  segments: readonly string[],
  search: string,
  signal: AbortSignal,
  config: ApiConfig = apiConfig(),
): Promise<Response> {
  const upstream = upstreamFor(segments, search, config);
  if (!upstream) return problem(404, "No such API route.");
  let answer: Response;
  try {
    answer = await fetch(upstream.url, { headers: upstream.headers, signal, cache: "no-store" });
  } catch (error) {
    if ((error as Error).name === "AbortError") return problem(499, "The request was cancelled.");
    console.error(`adpulse API at ${config.baseUrl} does not answer:`, error);
    return problem(502, "The adpulse API does not answer. Is it running?");
  }
  if (answer.status === 401 || answer.status === 403) {
    // The key is the server's, not the browser's: say so instead of passing on the challenge.
    console.error(`adpulse API refused the dashboard's key (HTTP ${answer.status}); check ADPULSE_API_KEY`);
    return problem(502, "The dashboard's API key was refused. An operator must check ADPULSE_API_KEY.");
  }
  const headers = new Headers();
  for (const name of FORWARDED) {
    const value = answer.headers.get(name);
    if (value) headers.set(name, value);
  }
  // Read the whole answer (they are small) so that an API failing mid-answer becomes a 502
  // the browser can read, not a truncated 200.
  let body: ArrayBuffer;
  try {
    body = await answer.arrayBuffer();
  } catch (error) {
    if ((error as Error).name === "AbortError") return problem(499, "The request was cancelled.");
    console.error(`adpulse API at ${config.baseUrl} broke off its answer:`, error);
    return problem(502, "The adpulse API broke off its answer. Retrying.");
  }
  return new Response(body, { status: answer.status, headers });
}
