import path from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/**
 * The dashboard is built into the package (dist/ui) by `npm run build`, and `kiln server`
 * serves it at `/`. Asset URLs are absolute (`/assets/…`) so deep links like
 * `/runs/<id>/artifacts` load the same bundle.
 */
export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  plugins: [react()],
  build: {
    outDir: path.resolve(import.meta.dirname, '../dist/ui'),
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    // `npm run ui:dev` next to a `kiln server --port 5000`.
    proxy: { '/api': 'http://127.0.0.1:5000', '/ajax-api': 'http://127.0.0.1:5000' },
  },
});
