/**
 * Bars per minute, drawn with CSS (a dozen bars do not need a chart library). The last bar is
 * the minute in progress and is drawn lighter; each bar's value is in its title and, for
 * screen readers, in text.
 */
export interface MinuteBar {
  t: number;
  value: number;
}

export function MinuteBars({
  bars,
  label,
  formatTime,
  formatValue,
  height = 96,
}: {
  bars: readonly MinuteBar[];
  label: string;
  formatTime: (t: number) => string;
  formatValue: (v: number) => string;
  height?: number;
}) {
  const max = Math.max(1, ...bars.map((b) => b.value));
  const first = bars[0];
  const last = bars.at(-1);
  return (
    <figure className="minute-bars">
      <ol aria-label={label} style={{ height }}>
        {bars.map((bar, i) => {
          const text = `${formatTime(bar.t)}${i === bars.length - 1 ? " (in progress)" : ""}: ${formatValue(bar.value)}`;
          return (
            <li key={bar.t} className={i === bars.length - 1 ? "is-current" : undefined} title={text}>
              <span className="minute-bar" style={{ height: `${(bar.value / max) * 100}%` }} aria-hidden="true" />
              <span className="visually-hidden">{text}</span>
            </li>
          );
        })}
      </ol>
      {first && last ? (
        <figcaption className="minute-axis" aria-hidden="true">
          <span>{formatTime(first.t)}</span>
          <span>now</span>
        </figcaption>
      ) : null}
    </figure>
  );
}
