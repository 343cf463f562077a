import { readFileSync } from 'node:fs';
import type { TestApp } from './app.ts';

export const PLANT_YAML = readFileSync(new URL('../../examples/plant.yaml', import.meta.url), 'utf8');

/** Imports a `signals` section (on equipment already stored) as admin. */
export async function importSignals(t: TestApp, signals: readonly object[]): Promise<void> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/api/plant/import',
    headers: { cookie: await t.adminCookie() },
    payload: { signals },
  });
  if (res.statusCode !== 200) throw new Error(`signal import failed: ${res.statusCode} ${res.body}`);
}

/** Imports examples/plant.yaml (the automotive plant) as admin. */
export async function importExamplePlant(t: TestApp): Promise<void> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/api/plant/import',
    headers: { cookie: await t.adminCookie(), 'content-type': 'application/yaml' },
    payload: PLANT_YAML,
  });
  if (res.statusCode !== 200) throw new Error(`plant import failed: ${res.statusCode} ${res.body}`);
}
