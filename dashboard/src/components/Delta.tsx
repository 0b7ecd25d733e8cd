import { formatChange } from "@/lib/format";
import type { Tone } from "@/lib/metrics";

/** A change against the previous period, coloured by whether it is good news. */
export function Delta({ change, tone, against }: { change: number | null; tone: Tone; against: string }) {
  if (change === null) {
    return (
      <span className="delta delta-neutral" title={`Nothing to compare with: no data in the previous ${against}`}>
        —<span className="delta-against"> no data in the previous {against}</span>
      </span>
    );
  }
  const arrow = tone === "neutral" && Math.abs(change) < 0.0005 ? "" : change > 0 ? "▲ " : "▼ ";
  const words = change > 0 ? "up" : change < 0 ? "down" : "unchanged";
  return (
    <span className={`delta delta-${tone}`} title={`${words} ${formatChange(change)} against the previous ${against}`}>
      <span aria-hidden="true">{arrow}</span>
      {formatChange(change)}
      <span className="delta-against"> vs previous {against}</span>
    </span>
  );
}
