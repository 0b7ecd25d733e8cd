/** Horizontal bars with a label and a value each; the widest bar is the largest value. */
export interface BarItem {
  key: string;
  label: string;
  value: number;
  /** The value as shown. */
  display: string;
  /** Secondary figure at the right (e.g. CTR). */
  detail?: string;
}

export function BarList({ items, label }: { items: readonly BarItem[]; label: string }) {
  const max = Math.max(1, ...items.map((i) => i.value));
  return (
    <ul className="barlist" aria-label={label}>
      {items.map((item) => (
        <li key={item.key} className="barlist-row">
          <span className="barlist-bar" style={{ width: `${Math.max(0.5, (item.value / max) * 100)}%` }} aria-hidden="true" />
          <span className="barlist-label">{item.label}</span>
          <span className="barlist-value">{item.display}</span>
          {item.detail !== undefined ? <span className="barlist-detail">{item.detail}</span> : null}
        </li>
      ))}
    </ul>
  );
}
