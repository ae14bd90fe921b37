// Firebase App Check (docs/deploy.md, "App Check"). When the runtime config names a
// reCAPTCHA Enterprise site key (`appCheckSiteKey`), every request to the HTTP
// functions carries an App Check token in X-Firebase-AppCheck, which they require when
// APP_CHECK_ENFORCED is set. Without a site key (the local stack) nothing is sent and
// nothing else changes. A submit carries a limited-use token of its own (a fresh
// reCAPTCHA attestation each time), which the function consumes: a replay of it is
// refused. Every other request carries the cached, auto-refreshed token.

import { getLimitedUseToken, getToken, initializeAppCheck, ReCaptchaEnterpriseProvider } from 'firebase/app-check';

export const APP_CHECK_HEADER = 'X-Firebase-AppCheck';

let appCheck = null;

/** Start App Check for the Firebase app, if the config asks for it (needs its appId). */
export function startAppCheck(app, config) {
  if (!config.appCheckSiteKey) return;
  appCheck = initializeAppCheck(app, {
    provider: new ReCaptchaEnterpriseProvider(config.appCheckSiteKey),
    isTokenAutoRefreshEnabled: true,
  });
}

/**
 * The App Check header to add to a request to the functions: {} without App Check.
 * `limitedUse`: a fresh limited-use token, for one submit (POST /v1/strategies, which
 * spends it; a retry asks again). A token that cannot be had now is left out rather
 * than failing the request: the function then answers why (401), and the page shows
 * it like any refusal.
 */
export async function appCheckHeaders({ limitedUse = false } = {}) {
  if (!appCheck) return {};
  try {
    const { token } = limitedUse ? await getLimitedUseToken(appCheck) : await getToken(appCheck, false);
    return { [APP_CHECK_HEADER]: token };
  } catch (error) {
    console.warn(`App Check: no token (${error?.message ?? error})`);
    return {};
  }
}
