import tailwindcss from '@tailwindcss/vite'
import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

// Served by the gateway under /ui (same origin as the API: no CORS, no credentials in URLs).
// `npm run dev` proxies the API to a local gateway for UI work.
export default defineConfig({
  base: '/ui/',
  plugins: [react(), tailwindcss()],
  build: {
    outDir: 'dist',
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: {
      // ws: the tenant WebSocket (/api/v1/events/ws) goes through the proxy as well.
      '/api': { target: process.env.OMIUM_GATEWAY_URL ?? 'http://127.0.0.1:8000', ws: true },
    },
  },
})
