/** Colour tokens for charts; the same values as the CSS variables in app/globals.css. */
export const COLORS = {
  series: "#2563eb",
  seriesFill: "#3b82f6",
  seriesMuted: "#93c5fd",
  grid: "#e5e7eb",
  axis: "#4b5563",
  text: "#111827",
} as const;
