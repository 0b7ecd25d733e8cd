import type { NextConfig } from "next";

const config: NextConfig = {
  poweredByHeader: false,
  reactStrictMode: true,
  // A self-contained server in .next/standalone (server.js and the node_modules it traces):
  // the release ships it with a Node.js runtime, and `node server.js` serves it on the hosts.
  output: "standalone",
  // Trace from this folder, not from a parent Next guesses from lockfiles, so server.js sits
  // at the top of .next/standalone.
  outputFileTracingRoot: import.meta.dirname,
  // No image optimisation is needed, so the server never loads sharp: leave it and its libvips
  // out of the trace, as they are native code for the build machine's arch only.
  images: { unoptimized: true },
  outputFileTracingExcludes: { "*": ["node_modules/sharp/**", "node_modules/@img/**"] },
};

export default config;
