"use client";
/** The one wrapper around Recharts for values over time: an area chart with a tooltip. */
import { Area, AreaChart, CartesianGrid, Tooltip, XAxis, YAxis } from "recharts";
import { COLORS } from "@/lib/colors";

export interface TimePoint {
  /** Bucket start, ms since the epoch. */
  t: number;
  value: number | null;
}

interface Row {
  t: number;
  /** Complete buckets: a solid line. */
  value: number | null;
  /** The bucket in progress and the one before it: a dashed line, as it will still grow. */
  partial: number | null;
}

interface TooltipArgs {
  active?: boolean;
  label?: unknown;
  payload?: ReadonlyArray<{ value?: unknown }>;
}

/** Split the points so the bucket in progress (from `partialFrom` on) is drawn apart. */
export function chartRows(points: readonly TimePoint[], partialFrom: number | undefined): Row[] {
  const firstPartial = partialFrom === undefined ? -1 : points.findIndex((p) => p.t >= partialFrom);
  return points.map((p, i) => ({
    t: p.t,
    value: firstPartial === -1 || i < firstPartial ? p.value : null,
    partial: firstPartial !== -1 && i >= firstPartial - 1 ? p.value : null,
  }));
}

export function TimeChart({
  points,
  label,
  formatTime,
  formatTick,
  formatValue,
  formatAxis,
  partialFrom,
  height = 260,
}: {
  points: readonly TimePoint[];
  /** Start of the first bucket still in progress, if the range reaches the present. */
  partialFrom?: number;
  /** What the series is, for the tooltip and screen readers. */
  label: string;
  /** A bucket's start in full, for the tooltip. */
  formatTime: (t: number) => string;
  /** A bucket's start on the axis. */
  formatTick: (t: number) => string;
  formatValue: (v: number | null) => string;
  formatAxis: (v: number) => string;
  height?: number;
}) {
  const rows = chartRows(points, partialFrom);
  const renderTooltip = ({ active, label: t, payload }: TooltipArgs) => {
    if (!active || typeof t !== "number" || !payload?.length) return null;
    const inProgress = partialFrom !== undefined && t >= partialFrom;
    const value = payload[inProgress ? payload.length - 1 : 0]?.value;
    return (
      <div className="chart-tooltip">
        <div className="chart-tooltip-time">
          {formatTime(t)}
          {inProgress ? " (in progress)" : ""}
        </div>
        <div>
          {label}: <strong>{formatValue(typeof value === "number" ? value : null)}</strong>
        </div>
      </div>
    );
  };
  return (
    <div className="chart" style={{ height }}>
      <AreaChart
        responsive
        style={{ width: "100%", height }}
        data={rows}
        margin={{ top: 8, right: 12, bottom: 0, left: 0 }}
        title={label}
      >
        <defs>
          <linearGradient id="series-fill" x1="0" y1="0" x2="0" y2="1">
            <stop offset="0%" stopColor={COLORS.seriesFill} stopOpacity={0.28} />
            <stop offset="100%" stopColor={COLORS.seriesFill} stopOpacity={0.02} />
          </linearGradient>
        </defs>
        <CartesianGrid stroke={COLORS.grid} vertical={false} />
        <XAxis
          dataKey="t"
          type="number"
          scale="time"
          domain={["dataMin", "dataMax"]}
          tickFormatter={formatTick}
          tick={{ fill: COLORS.axis, fontSize: 12 }}
          tickLine={false}
          axisLine={{ stroke: COLORS.grid }}
          minTickGap={24}
        />
        <YAxis
          tickFormatter={formatAxis}
          tick={{ fill: COLORS.axis, fontSize: 12 }}
          tickLine={false}
          axisLine={false}
          width={64}
        />
        <Tooltip content={renderTooltip} cursor={{ stroke: COLORS.axis, strokeDasharray: "3 3" }} />
        <Area
          type="monotone"
          dataKey="value"
          name={label}
          stroke={COLORS.series}
          strokeWidth={2}
          fill="url(#series-fill)"
          isAnimationActive={false}
          connectNulls={false}
        />
        <Area
          type="monotone"
          dataKey="partial"
          name={`${label} (in progress)`}
          stroke={COLORS.series}
          strokeWidth={2}
          strokeDasharray="4 4"
          fill="url(#series-fill)"
          isAnimationActive={false}
          connectNulls={false}
          activeDot={false}
        />
      </AreaChart>
    </div>
  );
}
