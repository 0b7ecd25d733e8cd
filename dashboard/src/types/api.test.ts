import { readFileSync } from "node:fs";
import openapiTS, { astToString, COMMENT_HEADER } from "openapi-typescript";
import { describe, expect, it } from "vitest";

// tests/dashboard/test_openapi_drift.py checks openapi.json against the API itself; this
// checks the next link of the chain, so the types cannot drift from the API.
describe("src/types/api.d.ts", () => {
  it("is what openapi-typescript generates from openapi.json (run `npm run gen:types`)", async () => {
    const spec = new URL("../../openapi.json", import.meta.url);
    const generated = `${COMMENT_HEADER}${astToString(await openapiTS(spec, { silent: true }))}`;
    const committed = readFileSync(new URL("./api.d.ts", import.meta.url), "utf8");
    expect(committed).toBe(generated);
  }, 30_000);
});
