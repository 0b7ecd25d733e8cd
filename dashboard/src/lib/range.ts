/**
 * Time-range maths. Pure. Every window is half-open, [from, to), in UTC and aligned to whole
 * minutes, the finest bucket the API answers in, so that the server's first render and the
 * browser's polls ask the same question (and hit the same cache entry).
 */
import type { Granularity } from "@/types";

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

/** Longest custom range: breakdowns read hourly rollups that answer at most 92 days. */
export const MAX_CUSTOM_MS = 92 * DAY_MS;

export const PRESETS = [
  { key: "15m", label: "15 min", long: "last 15 minutes", span: 15 * MINUTE_MS },
  { key: "1h", label: "1 h", long: "last hour", span: HOUR_MS },
  { key: "24h", label: "24 h", long: "last 24 hours", span: DAY_MS },
  { key: "7d", label: "7 d", long: "last 7 days", span: 7 * DAY_MS },
  { key: "30d", label: "30 d", long: "last 30 days", span: 30 * DAY_MS },
] as const;

export type PresetKey = (typeof PRESETS)[number]["key"];
export type RangeChoice = { kind: "preset"; key: PresetKey } | { kind: "custom"; from: Date; to: Date };
export interface Window {
  from: Date;
  to: Date;
}

export const DEFAULT_RANGE: RangeChoice = { kind: "preset", key: "24h" };

export function isPresetKey(value: string): value is PresetKey {
  return PRESETS.some((p) => p.key === value);
}

export function presetOf(key: PresetKey): (typeof PRESETS)[number] {
  const preset = PRESETS.find((p) => p.key === key);
  if (!preset) throw new Error(`unknown range preset ${key}`);
  return preset;
}

export function floorTo(ms: number, step: number): number {
  return Math.floor(ms / step) * step;
}

export function ceilTo(ms: number, step: number): number {
  return Math.ceil(ms / step) * step;
}

/** A preset ends with the minute in progress at `now`; a custom range is taken as it is. */
export function resolveWindow(range: RangeChoice, now: number): Window {
  if (range.kind === "custom") return { from: range.from, to: range.to };
  const to = floorTo(now, MINUTE_MS) + MINUTE_MS;
  return { from: new Date(to - presetOf(range.key).span), to: new Date(to) };
}

export function spanOf(window: Window): number {
  return window.to.getTime() - window.from.getTime();
}

/** Whether the window reaches the present, so its numbers still move and are worth polling. */
export function isLive(range: RangeChoice, now: number): boolean {
  return range.kind === "preset" || range.to.getTime() > now - MINUTE_MS;
}

/**
 * Check a custom range typed by a person or read from a URL: whole minutes, from before to,
 * at most MAX_CUSTOM_MS long. Returns the range or a sentence saying what is wrong.
 */
export function checkCustom(
  from: Date | null,
  to: Date | null,
): { ok: true; range: RangeChoice } | { ok: false; problem: string } {
  if (!from || Number.isNaN(from.getTime())) return { ok: false, problem: "Enter a valid start time." };
  if (!to || Number.isNaN(to.getTime())) return { ok: false, problem: "Enter a valid end time." };
  const start = floorTo(from.getTime(), MINUTE_MS);
  const end = ceilTo(to.getTime(), MINUTE_MS);
  if (start < 0) return { ok: false, problem: "The start must be after 1970-01-01." };
  if (end <= start) return { ok: false, problem: "The end must be after the start." };
  if (end - start > MAX_CUSTOM_MS) return { ok: false, problem: "A range can span at most 92 days." };
  return { ok: true, range: { kind: "custom", from: new Date(start), to: new Date(end) } };
}

const STEP: Record<Granularity, number> = { minute: MINUTE_MS, hour: HOUR_MS, day: DAY_MS };
/** The API's limits: at most 1,500 buckets (minute: 1 day, hour: 62 days). */
const API_LIMIT: Record<Granularity, number> = { minute: DAY_MS, hour: 62 * DAY_MS, day: 732 * DAY_MS };
export const GRANULARITIES: readonly Granularity[] = ["minute", "hour", "day"];
const MAX_DEFAULT_BUCKETS = 400;

export function stepOf(granularity: Granularity): number {
  return STEP[granularity];
}

/** The buckets the API answers for the window: it widens to whole buckets. */
export function bucketCount(window: Window, granularity: Granularity): number {
  const step = STEP[granularity];
  return (ceilTo(window.to.getTime(), step) - floorTo(window.from.getTime(), step)) / step;
}

/** Granularities the API accepts for the window that give a chart at least two buckets. */
export function allowedGranularities(window: Window): Granularity[] {
  const span = spanOf(window);
  return GRANULARITIES.filter((g) => span <= API_LIMIT[g] && (g === "minute" || span >= 2 * STEP[g]));
}

/** The finest allowed granularity with a readable number of buckets. */
export function defaultGranularity(window: Window): Granularity {
  const allowed = allowedGranularities(window);
  return allowed.find((g) => bucketCount(window, g) <= MAX_DEFAULT_BUCKETS) ?? allowed.at(-1) ?? "day";
}

/** The asked granularity when the window allows it, else the default. */
export function effectiveGranularity(window: Window, asked: Granularity | null): Granularity {
  return asked && allowedGranularities(window).includes(asked) ? asked : defaultGranularity(window);
}

/** The span briefly: "15 min", "24 h", "7 d". */
export function describeSpan(window: Window): string {
  const span = spanOf(window);
  if (span >= 2 * DAY_MS && span % DAY_MS === 0) return `${span / DAY_MS} d`;
  if (span % HOUR_MS === 0) return `${span / HOUR_MS} h`;
  return `${Math.round(span / MINUTE_MS)} min`;
}

/** Value for an <input type="datetime-local"> that shows the moment in UTC: 2026-11-27T14:05. */
export function toInputValue(date: Date): string {
  return date.toISOString().slice(0, 16);
}

/** Read an <input type="datetime-local"> value as UTC. */
export function fromInputValue(value: string): Date | null {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(value)) return null;
  const date = new Date(`${value}:00Z`);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** RFC 3339 in UTC without milliseconds: 2026-11-27T14:05:00Z. */
export function toIso(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}
