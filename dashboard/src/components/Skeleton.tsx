/** A grey placeholder while a panel's first answer is on its way. */
export function Skeleton({ height, width = "100%" }: { height: number | string; width?: number | string }) {
  return <span className="skeleton" style={{ height, width }} aria-hidden="true" />;
}
