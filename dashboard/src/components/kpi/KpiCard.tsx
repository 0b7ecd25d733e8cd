import { Delta } from "@/components/Delta";
import { relativeChange } from "@/lib/format";
import { METRICS, toneOf } from "@/lib/metrics";
import type { MetricKey, Metrics } from "@/types";

/** One headline number and its change against the previous period of equal length. */
export function KpiCard({
  metric,
  current,
  previous,
  against,
}: {
  metric: MetricKey;
  current: Metrics;
  previous: Metrics | null | undefined;
  against: string;
}) {
  const spec = METRICS[metric];
  const value = current[metric];
  const change = previous ? relativeChange(value, previous[metric]) : null;
  return (
    <div className="kpi" data-testid={`kpi-${spec.slug}`} data-metric={metric} data-value={value ?? ""}>
      <h3 className="kpi-label" title={spec.description}>
        {spec.label}
      </h3>
      <p className="kpi-value" title={spec.formatExact(value)}>
        {spec.format(value)}
      </p>
      <p className="kpi-delta">
        <Delta change={change} tone={toneOf(metric, change)} against={against} />
      </p>
    </div>
  );
}
