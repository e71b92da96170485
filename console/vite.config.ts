// The web console: built into dist/console (npm run build), served by the daemon at /.
// `npx vite --config console/vite.config.ts` serves it with hot reload, sending API calls
// to the daemon at DYNROUTE_URL (default http://127.0.0.1:8080).
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const daemon = process.env.DYNROUTE_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/",
  // No inline assets: everything is a file of this origin, as the daemon's CSP allows.
  build: {
    outDir: "../dist/console",
    emptyOutDir: true,
    target: "es2022",
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 600,
    rolldownOptions: {
      // TanStack Query marks its modules "use client" for React Server Components; meaningless in a browser bundle.
      onLog(level, log, handler) {
        if (log.code !== "MODULE_LEVEL_DIRECTIVE") handler(level, log);
      },
    },
  },
  oxc: { jsx: { runtime: "automatic" } },
  server: { proxy: { "/v1": daemon, "/dynroute.v1.": daemon, "/readyz": daemon } },
});
