import type { NextConfig } from "next";

const config: NextConfig = {
  poweredByHeader: false,
  reactStrictMode: true,
  // The dashboard is served by `next start` next to the API; no image optimisation is needed.
  images: { unoptimized: true },
};

export default config;
