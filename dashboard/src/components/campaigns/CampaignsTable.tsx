"use client";
import Link from "next/link";
import { useEffect, useState } from "react";
import { Card } from "@/components/Card";
import { PanelState, panelStatus } from "@/components/PanelState";
import { Skeleton } from "@/components/Skeleton";
import { campaignsRequest, exportUrl, type Loaded } from "@/lib/api";
import { formatInteger } from "@/lib/format";
import { METRICS } from "@/lib/metrics";
import { usePanelWindow } from "@/lib/usePanelWindow";
import { usePolled } from "@/lib/usePolled";
import { useView } from "@/lib/useView";
import { cleanSearch, PAGE_SIZE, rangeParams, toSearch } from "@/lib/view";
import type { CampaignRow, Campaigns, MetricKey, SortKey } from "@/types";

const NUMERIC_COLUMNS: readonly MetricKey[] = [
  "impressions",
  "clicks",
  "ctr",
  "conversions",
  "spend_micros",
  "cpa",
  "roas",
];
const SEARCH_DELAY_MS = 300;

/** Campaigns with events in the range: search, sort by any column, page, export as CSV. */
export function CampaignsTable({ initial }: { initial?: Loaded<Campaigns> }) {
  const [view, setView] = useView();
  const { window, live } = usePanelWindow();
  const table = { q: view.q, sort: view.sort, order: view.order, limit: PAGE_SIZE, offset: (view.page - 1) * PAGE_SIZE };
  const req = campaignsRequest(window, table);
  const { data, error, stale, retry } = usePolled(req, initial, live);
  const [text, setText] = useState(view.q);

  useEffect(() => setText(view.q), [view.q]);
  useEffect(() => {
    const q = cleanSearch(text);
    if (q === view.q) return;
    const timer = setTimeout(() => setView({ q, page: 1 }), SEARCH_DELAY_MS);
    return () => clearTimeout(timer);
  }, [text, view.q, setView]);

  const sortBy = (key: SortKey) => {
    const textual = key === "name" || key === "advertiser" || key === "status" || key === "campaign_id";
    const order = key === view.sort ? (view.order === "desc" ? "asc" : "desc") : textual ? "asc" : "desc";
    setView({ sort: key, order, page: 1 });
  };
  const total = data?.total ?? 0;
  const first = data && data.rows.length ? data.offset + 1 : 0;
  const last = data ? data.offset + data.rows.length : 0;
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const state = panelStatus({ data, error, stale, empty: data?.rows.length === 0 });
  const linkSearch = toSearch(rangeParams(view.range));

  const header = (key: SortKey, label: string, numeric: boolean) => {
    const sorted = view.sort === key;
    return (
      <th
        key={key}
        scope="col"
        className={numeric ? "num" : key === "status" ? "col-status" : undefined}
        aria-sort={sorted ? (view.order === "asc" ? "ascending" : "descending") : "none"}
      >
        <button type="button" className="sort" onClick={() => sortBy(key)} data-sort={key}>
          {label}
          <span className="sort-mark" aria-hidden="true">
            {sorted ? (view.order === "asc" ? "▲" : "▼") : ""}
          </span>
        </button>
      </th>
    );
  };

  return (
    <Card
      id="campaigns"
      title="Campaigns"
      subtitle={data ? `${formatInteger(total)} with events in this range` : "Campaigns with events in this range"}
      busy={state === "loading"}
      className="panel-table"
      data-testid="campaigns"
      data-state={state}
      data-url={data && !stale ? req.url : undefined}
      data-total={data && !stale ? String(total) : undefined}
      actions={
        <>
          <label className="search">
            <span className="visually-hidden">Search campaigns</span>
            <input
              type="search"
              placeholder="Search name, advertiser or id"
              value={text}
              maxLength={100}
              onChange={(e) => setText(e.target.value)}
              data-testid="campaign-search"
            />
          </label>
          <a
            className="button"
            href={exportUrl(window, table)}
            download
            data-testid="export-csv"
            title="Download every matching row (not only this page) as CSV"
          >
            Export CSV
          </a>
        </>
      }
    >
      <PanelState
        data={data}
        error={error}
        onRetry={retry}
        skeleton={<Skeleton height={320} />}
        errorTitle="Campaigns are unavailable"
        empty={{
          when: data?.rows.length === 0,
          title: view.q ? `No campaign matches “${view.q}”` : "No campaigns with events in this range",
          text: view.q ? "Search looks at names, advertisers and exact ids." : "Pick another range.",
        }}
      >
        {(data) => (
          <>
            <div className="table-scroll">
              <table className="table">
                <caption className="visually-hidden">
                  Campaigns, sorted by {view.sort.replace("_micros", "")} {view.order === "asc" ? "ascending" : "descending"}
                </caption>
                <thead>
                  <tr>
                    {header("name", "Campaign", false)}
                    {header("status", "Status", false)}
                    {NUMERIC_COLUMNS.map((key) => header(key, METRICS[key].label, true))}
                  </tr>
                </thead>
                <tbody>
                  {data.rows.map((row) => (
                    <Row key={row.campaign_id} row={row} href={`/campaigns/${row.campaign_id}${linkSearch}`} />
                  ))}
                </tbody>
              </table>
            </div>
            <nav className="pager" aria-label="Campaign pages">
              <span data-testid="page-info">
                {formatInteger(first)}–{formatInteger(last)} of {formatInteger(total)}
              </span>
              <button
                type="button"
                className="button"
                disabled={view.page <= 1}
                onClick={() => setView({ page: view.page - 1 })}
              >
                Previous
              </button>
              <button
                type="button"
                className="button"
                disabled={view.page >= pages}
                onClick={() => setView({ page: view.page + 1 })}
                data-testid="next-page"
              >
                Next
              </button>
            </nav>
          </>
        )}
      </PanelState>
    </Card>
  );
}

function Row({ row, href }: { row: CampaignRow; href: string }) {
  return (
    <tr data-campaign-id={row.campaign_id}>
      <th scope="row" className="campaign-cell">
        <Link href={href} prefetch={false} className="campaign-link">
          {row.name ?? `Campaign #${row.campaign_id}`}
        </Link>
        <span className="campaign-sub">
          {row.name === null && row.advertiser === null
            ? "No metadata imported"
            : `${row.advertiser ?? "Unknown advertiser"} · #${row.campaign_id}`}
        </span>
      </th>
      <td className="col-status">
        <span className={`status status-${row.status ?? "unknown"}`}>{row.status ?? "unknown"}</span>
      </td>
      {NUMERIC_COLUMNS.map((key) => (
        <td key={key} className="num" data-key={key} data-value={row[key] ?? ""}>
          {METRICS[key].formatExact(row[key])}
        </td>
      ))}
    </tr>
  );
}
