// Vite: the UI is served by `skit serve` from dist/ (hashed files under assets/); `npm run dev`
// proxies the API to a running server (SKIT_URL, default http://127.0.0.1:4545).
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const target = process.env.SKIT_URL ?? 'http://127.0.0.1:4545';

export default defineConfig({
  plugins: [react()],
  base: './',
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    chunkSizeWarningLimit: 1500,
    target: 'es2021',
  },
  server: {
    proxy: {
      '/api': { target, ws: true, changeOrigin: false },
      '/healthz': target,
    },
  },
  test: {
    include: ['tests/**/*.test.ts', 'tests/**/*.test.tsx'],
    testTimeout: 30000,
    hookTimeout: 60000,
    fileParallelism: false,
  },
});
