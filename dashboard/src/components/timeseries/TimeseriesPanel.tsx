"use client";
import { Card } from "@/components/Card";
import { PanelState, panelStatus } from "@/components/PanelState";
import { Segmented } from "@/components/Segmented";
import { Skeleton } from "@/components/Skeleton";
import { TimeChart, type TimePoint } from "@/components/TimeChart";
import { timeseriesRequest, type Loaded } from "@/lib/api";
import { formatClock, formatDay, formatDayClock } from "@/lib/format";
import { CHART_METRICS, METRICS } from "@/lib/metrics";
import { useClock } from "@/lib/clock";
import { allowedGranularities, DAY_MS, effectiveGranularity, GRANULARITIES, spanOf, stepOf } from "@/lib/range";
import { usePanelWindow } from "@/lib/usePanelWindow";
import { usePolled } from "@/lib/usePolled";
import { useView } from "@/lib/useView";
import type { Granularity, MetricKey, Timeseries } from "@/types";

const GRANULARITY_LABELS: Record<Granularity, string> = { minute: "Minute", hour: "Hour", day: "Day" };
const UNAVAILABLE: Record<Granularity, string> = {
  minute: "Per-minute charts cover at most one day",
  hour: "Hourly charts need a range of 2 hours to 62 days",
  day: "Daily charts need a range of at least 2 days",
};

/** The chosen metric over the range, per minute, hour or day. */
export function TimeseriesPanel({
  initial,
  campaignId,
}: {
  initial?: Loaded<Timeseries>;
  campaignId: number | null;
}) {
  const [view, setView] = useView();
  const { window, live } = usePanelWindow();
  const { now } = useClock();
  const granularity = effectiveGranularity(window, view.granularity);
  const allowed = allowedGranularities(window);
  const req = timeseriesRequest(window, granularity, campaignId);
  const { data, error, stale, retry } = usePolled(req, initial, live);
  const spec = METRICS[view.metric];

  const points: TimePoint[] = (data?.points ?? []).map((p) => ({ t: Date.parse(p.t), value: p[view.metric] }));
  const empty = data !== undefined && data.points.every((p) => p.impressions === 0 && p.clicks === 0);
  const multiDay = spanOf(window) > DAY_MS;
  const last = points.at(-1);
  const partialFrom = last && last.t + stepOf(granularity) > now ? last.t : undefined;
  const formatTick = (t: number) =>
    granularity === "day" ? formatDay(new Date(t)) : multiDay ? formatDayClock(new Date(t)) : formatClock(new Date(t));
  const formatTime = (t: number) =>
    granularity === "day" ? `${formatDay(new Date(t))} (UTC day)` : `${formatDayClock(new Date(t))} UTC`;
  const state = panelStatus({ data, error, stale, empty });

  return (
    <Card
      id="timeseries"
      title={`${spec.label} over time`}
      subtitle={`Per ${granularity}, UTC${partialFrom !== undefined ? "; dashed: still in progress" : ""}`}
      busy={state === "loading"}
      className="panel-chart"
      data-testid="timeseries"
      data-state={state}
      data-url={data && !stale ? req.url : undefined}
      data-points={data && !stale ? String(data.points.length) : undefined}
      actions={
        <>
          <label className="select-label">
            <span className="visually-hidden">Metric</span>
            <select
              className="select"
              value={view.metric}
              onChange={(e) => setView({ metric: e.target.value as MetricKey })}
              data-testid="metric-select"
            >
              {CHART_METRICS.map((key) => (
                <option key={key} value={key}>
                  {METRICS[key].label}
                </option>
              ))}
            </select>
          </label>
          <Segmented
            label="Granularity"
            testId="granularity"
            value={granularity}
            onChange={(g) => setView({ granularity: g })}
            options={GRANULARITIES.map((g) => ({
              value: g,
              label: GRANULARITY_LABELS[g],
              disabled: !allowed.includes(g),
              title: allowed.includes(g) ? undefined : UNAVAILABLE[g],
            }))}
          />
        </>
      }
    >
      <PanelState
        data={data}
        error={error}
        onRetry={retry}
        skeleton={<Skeleton height={260} />}
        errorTitle="The chart is unavailable"
        empty={{
          when: empty,
          title: "No events in this range",
          text: "Pick another range, or check that traffic is flowing.",
        }}
      >
        {() => (
          <TimeChart
            points={points}
            label={spec.label}
            formatTime={formatTime}
            formatTick={formatTick}
            formatValue={spec.formatExact}
            formatAxis={spec.format}
            partialFrom={partialFrom}
          />
        )}
      </PanelState>
    </Card>
  );
}

