import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

// House style: types <- lib <- components (primitives) <- components/<feature> <- app.
// A module may import its own layer or a lower one, never a higher one.
const SRC = new URL(".", import.meta.url).pathname;
const LAYERS = ["types", "lib", "components", "feature", "app"] as const;

/** The layer of a module, given its path under src/ without the extension. */
function layerOf(module: string): (typeof LAYERS)[number] {
  const parts = module.split("/");
  if (parts[0] === "types" || parts[0] === "lib") return parts[0];
  if (parts[0] === "components") return parts.length === 2 ? "components" : "feature";
  return "app";
}

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "test" ? [] : files(path);
    return /\.tsx?$/.test(entry.name) && !/\.test\.tsx?$/.test(entry.name) ? [path] : [];
  });
}

describe("imports never point upward", () => {
  for (const file of files(SRC)) {
    const path = relative(SRC, file);
    it(path, () => {
      const own = LAYERS.indexOf(layerOf(path.replace(/\.tsx?$/, "")));
      const imports = [...readFileSync(file, "utf8").matchAll(/from\s+"@\/([^"]+)"/g)].map((m) => m[1] ?? "");
      const upward = imports.filter((target) => LAYERS.indexOf(layerOf(target)) > own);
      expect(upward, `${path} imports a higher layer`).toEqual([]);
    });
  }
});
