// Builds the web app: bundles web/src/app.js into web/dist/app.js with esbuild and,
// when the stack's env is present, writes web/dist/config.json for it.
//
//   node web/build.mjs                      bundle only (dist/config.json left as is)
//   eval "$(.venv/bin/python -m dev.stack env --name dev)"; node web/build.mjs --config-only
//                                           dist/config.json for that local stack
//
// The e2e tests answer dist/config.json themselves (tests/e2e/conftest.py), so that
// stacks sharing one working tree never read each other's config.
//
// Config from env: SUBMIT_URL, STATUS_URL (required for a config), GOOGLE_CLOUD_PROJECT
// (default demo-tinkerbell), FIREBASE_API_KEY (any value works with the emulators),
// FIREBASE_AUTH_DOMAIN, FIREBASE_APP_ID, AUTH_EMULATOR_URL, FIRESTORE_EMULATOR_HOST;
// APP_CHECK_SITE_KEY (a reCAPTCHA Enterprise site key: the app then sends App Check
// tokens, docs/deploy.md "App Check"; it needs FIREBASE_APP_ID).
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');

const configOnly = process.argv.includes('--config-only');

if (!configOnly) {
  await build({
    entryPoints: [join(here, 'src', 'app.js')],
    outfile: join(dist, 'app.js'),
    bundle: true,
    format: 'esm',
    target: ['es2022'],
    minify: true,
    sourcemap: true,
    legalComments: 'linked',
    logLevel: 'warning',
  });
  console.log('web/build.mjs: web/dist/app.js');
}

const env = process.env;
if (env.SUBMIT_URL && env.STATUS_URL) {
  const projectId = env.GOOGLE_CLOUD_PROJECT || 'demo-tinkerbell';
  const emulated = Boolean(env.AUTH_EMULATOR_URL || env.FIRESTORE_EMULATOR_HOST);
  if (emulated && !projectId.startsWith('demo-')) {
    console.error(`web/build.mjs: emulator settings with the project ${projectId}, which is not a demo- project`);
    process.exit(1);
  }
  const config = {
    projectId,
    apiKey: env.FIREBASE_API_KEY || (emulated ? 'demo-api-key' : ''),
    authDomain: env.FIREBASE_AUTH_DOMAIN || undefined,
    appId: env.FIREBASE_APP_ID || undefined,
    appCheckSiteKey: env.APP_CHECK_SITE_KEY || undefined,
    authEmulatorUrl: env.AUTH_EMULATOR_URL || undefined,
    firestoreEmulatorHost: env.FIRESTORE_EMULATOR_HOST || undefined,
    submitUrl: env.SUBMIT_URL,
    statusUrl: env.STATUS_URL,
  };
  if (!config.apiKey) {
    console.error('web/build.mjs: FIREBASE_API_KEY is required without the emulators');
    process.exit(1);
  }
  if (config.appCheckSiteKey && !config.appId) {
    console.error('web/build.mjs: APP_CHECK_SITE_KEY needs FIREBASE_APP_ID (App Check tokens are per app)');
    process.exit(1);
  }
  await mkdir(dist, { recursive: true });
  await writeFile(join(dist, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  console.log(`web/build.mjs: web/dist/config.json for ${config.submitUrl}`);
} else if (configOnly) {
  console.error('web/build.mjs: --config-only needs SUBMIT_URL and STATUS_URL (dev.stack env)');
  process.exit(1);
}
