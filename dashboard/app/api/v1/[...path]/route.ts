/** Same-origin access to the API: GET /api/v1/* is forwarded with the server's API key. */
import type { NextRequest } from "next/server";
import { proxy } from "@/lib/server-api";

export const dynamic = "force-dynamic";

export async function GET(request: NextRequest, context: { params: Promise<{ path: string[] }> }) {
  const { path } = await context.params;
  return proxy(path, request.nextUrl.search, request.signal);
}
