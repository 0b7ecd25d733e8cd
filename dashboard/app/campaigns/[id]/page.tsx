import type { Metadata } from "next";
import { notFound } from "next/navigation";
import { DashboardView } from "@/components/dashboard/DashboardView";
import { paramsFromRecord, parseView } from "@/lib/view";

export const dynamic = "force-dynamic";

type Params = Promise<{ id: string }>;

/** Campaign ids are unsigned 32-bit integers written in decimal. */
function campaignIdOf(text: string): number | null {
  if (!/^\d{1,10}$/.test(text)) return null;
  const id = Number(text);
  return id <= 2 ** 32 - 1 ? id : null;
}

export async function generateMetadata({ params }: { params: Params }): Promise<Metadata> {
  const { id } = await params;
  return { title: `Campaign #${id}` };
}

export default async function CampaignPage({
  params,
  searchParams,
}: {
  params: Params;
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const campaignId = campaignIdOf((await params).id);
  if (campaignId === null) notFound();
  const view = parseView(paramsFromRecord(await searchParams));
  return <DashboardView view={view} now={Date.now()} campaignId={campaignId} />;
}
