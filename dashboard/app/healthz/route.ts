/** The dashboard process serves HTTP (whether the API answers is the API's /readyz). */
export const dynamic = "force-dynamic";

export function GET() {
  return Response.json({ status: "ok" }, { headers: { "cache-control": "no-store" } });
}
