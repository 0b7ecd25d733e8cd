/**
 * Number and time formatters. Pure; the locale is fixed to en-US and times are shown in UTC so
 * that the server's render and the browser's hydration produce the same text.
 */

export const MISSING = "—";
const MICROS = 1_000_000;

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const compact1 = new Intl.NumberFormat("en-US", {
  notation: "compact",
  maximumFractionDigits: 1,
});
const compact2 = new Intl.NumberFormat("en-US", {
  notation: "compact",
  maximumFractionDigits: 2,
});
const usd = new Intl.NumberFormat("en-US", {
  style: "currency",
  currency: "USD",
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
});
const usdCompact = new Intl.NumberFormat("en-US", {
  style: "currency",
  currency: "USD",
  notation: "compact",
  maximumFractionDigits: 2,
});
const pct2 = new Intl.NumberFormat("en-US", {
  style: "percent",
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
});
const pct1 = new Intl.NumberFormat("en-US", {
  style: "percent",
  minimumFractionDigits: 1,
  maximumFractionDigits: 1,
});
const ratio2 = new Intl.NumberFormat("en-US", {
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
});

function usable(value: number | null | undefined): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/** 1,234 below ten thousand; 12.3K, 1.2M, 3.4B above. */
export function formatCount(value: number | null | undefined): string {
  if (!usable(value)) return MISSING;
  if (Math.abs(value) < 10_000) return integer.format(value);
  return (Math.abs(value) < 1_000_000 ? compact1 : compact2).format(value);
}

/** Every digit: 1,234,567. For tables, tooltips and titles. */
export function formatInteger(value: number | null | undefined): string {
  return usable(value) ? integer.format(value) : MISSING;
}

/** Micros of the account currency as dollars and cents: $3,456.78. */
export function formatMoney(micros: number | null | undefined): string {
  return usable(micros) ? usd.format(micros / MICROS) : MISSING;
}

/** Dollars and cents below $100K, then $123.4K, $1.23M. For KPI figures and axes. */
export function formatMoneyCompact(micros: number | null | undefined): string {
  if (!usable(micros)) return MISSING;
  const dollars = micros / MICROS;
  return Math.abs(dollars) < 100_000 ? usd.format(dollars) : usdCompact.format(dollars);
}

/** A ratio (0.0123) as a percentage with two decimals: 1.23%. */
export function formatPercent(ratio: number | null | undefined): string {
  return usable(ratio) ? pct2.format(ratio) : MISSING;
}

/** Return on ad spend (revenue / spend) as a multiple: 4.12×. */
export function formatMultiple(ratio: number | null | undefined): string {
  return usable(ratio) ? `${ratio2.format(ratio)}×` : MISSING;
}

/** Relative change of `current` over `previous`, or null when it has no meaning. */
export function relativeChange(
  current: number | null | undefined,
  previous: number | null | undefined,
): number | null {
  if (!usable(current) || !usable(previous) || previous === 0) return null;
  return (current - previous) / Math.abs(previous);
}

/** A signed change: +12.3%, −4.5% (a true minus sign), 0.0%. */
export function formatChange(change: number | null): string {
  if (change === null || !Number.isFinite(change)) return MISSING;
  const text = pct1.format(Math.abs(change));
  if (text === "0.0%") return text;
  return `${change > 0 ? "+" : "−"}${text}`;
}

/** Seconds as a short age: 3 s, 4 min, 2 h, 3 d. */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86_400)} d`;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad = (n: number) => String(n).padStart(2, "0");

/** 14:05 (UTC). */
export function formatClock(date: Date): string {
  return `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}`;
}

/** Nov 27 (UTC). */
export function formatDay(date: Date): string {
  return `${MONTHS[date.getUTCMonth()]} ${date.getUTCDate()}`;
}

/** Nov 27, 14:05 (UTC). */
export function formatDayClock(date: Date): string {
  return `${formatDay(date)}, ${formatClock(date)}`;
}

/**
 * A half-open range [from, to) for people: "Nov 27, 13:05 – 14:05 UTC" within one day,
 * "Nov 20 – Nov 27 UTC" for whole days, both ends in full otherwise.
 */
export function formatRange(from: Date, to: Date): string {
  const sameDay =
    from.getUTCFullYear() === to.getUTCFullYear() &&
    from.getUTCMonth() === to.getUTCMonth() &&
    from.getUTCDate() === to.getUTCDate();
  if (sameDay) return `${formatDayClock(from)} – ${formatClock(to)} UTC`;
  const wholeDays = [from, to].every((d) => d.getUTCHours() === 0 && d.getUTCMinutes() === 0);
  if (wholeDays) return `${formatDay(from)} – ${formatDay(to)} UTC`;
  return `${formatDayClock(from)} – ${formatDayClock(to)} UTC`;
}

const REGIONS = new Intl.DisplayNames(["en"], { type: "region", fallback: "code" });

/** ISO 3166 code to an English name; '' is traffic that was not geolocated. */
export function formatCountry(code: string): string {
  if (!code) return "Unknown";
  try {
    return REGIONS.of(code.toUpperCase()) ?? code;
  } catch {
    return code; // not a region code at all
  }
}

const DEVICES: Record<string, string> = { ctv: "Connected TV", tv: "TV", pc: "PC" };

/** desktop -> Desktop, ctv -> Connected TV, smart_tv -> Smart TV; '' -> Unknown. */
export function formatDevice(device: string): string {
  if (!device) return "Unknown";
  const known = DEVICES[device.toLowerCase()];
  if (known) return known;
  return device
    .split(/[_\s-]+/)
    .map((word) => (word.toLowerCase() === "tv" ? "TV" : word.charAt(0).toUpperCase() + word.slice(1)))
    .join(" ");
}
