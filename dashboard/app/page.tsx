import type { Metadata } from "next";
import { DashboardView } from "@/components/dashboard/DashboardView";
import { paramsFromRecord, parseView } from "@/lib/view";

export const dynamic = "force-dynamic";
export const metadata: Metadata = { title: { absolute: "Overview · adpulse" } };

export default async function OverviewPage({
  searchParams,
}: {
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const view = parseView(paramsFromRecord(await searchParams));
  return <DashboardView view={view} now={Date.now()} campaignId={null} />;
}
