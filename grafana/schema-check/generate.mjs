// Writes one TypeScript file per dashboard in ../dashboards/ that assigns the dashboard's JSON,
// as an object literal, to a variable typed `Dashboard` from @grafana/schema. `tsc --noEmit` then
// checks every key and value type against Grafana's published schema (object literals also get
// excess-property checks, so a misspelt key fails too).
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dashboards = fileURLToPath(new URL('../dashboards/', import.meta.url));
const generated = fileURLToPath(new URL('./generated/', import.meta.url));

rmSync(generated, { recursive: true, force: true });
mkdirSync(generated);
const files = readdirSync(dashboards).filter((f) => f.endsWith('.json')).sort();
if (files.length === 0) {
  console.error(`no dashboards in ${dashboards}`);
  process.exit(1);
}
for (const file of files) {
  const dashboard = JSON.parse(readFileSync(dashboards + file, 'utf8'));
  const name = file.replace(/\.json$/, '');
  writeFileSync(
    `${generated}${name}.ts`,
    `// Generated from grafana/dashboards/${file} by generate.mjs; do not edit.\n` +
      `import type { Dashboard } from '@grafana/schema';\n\n` +
      `export const dashboard: Dashboard = ${JSON.stringify(dashboard, null, 2)};\n`,
  );
}
console.log(`generated ${files.length} dashboard type checks`);
