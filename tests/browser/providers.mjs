// A person signing in with an identity provider, in headless Chromium
// (driven by playwright-core). Run by tests/it/browser.rs, which starts
// latchkey (public_url on auth.test) in front of the echo app (app.test),
// panva's oidc-provider ("Corp SSO") and the GitHub stand-in, and passes:
//
//   APP_URL    http://app.test:PORT (Chromium maps app.test and auth.test
//              to 127.0.0.1)
//   SHOT_DIR   where the screenshots go (phone and desktop width)
//   CHROMIUM   the browser binary (Debian's /usr/bin/chromium)
//
// JavaScript is off in every page, latchkey's and the provider's: the
// buttons are plain links and the provider's login and consent plain forms.
// Exits non-zero with a message saying what a person would have seen.

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { need, step, echoedHeader, shoot, chromiumArgs } from './common.mjs';

const APP_URL = need('APP_URL');
const SHOT_DIR = need('SHOT_DIR');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const shot = (page, name) => shoot(page, SHOT_DIR, name);

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: chromiumArgs(['app.test', 'auth.test']),
  });
  const newContext = () =>
    browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 800 } });
  try {
    step('a protected page sends an anonymous person to the sign-in page, which has both buttons');
    const a = await newContext();
    const page = await a.newPage();
    const original = `${APP_URL}/reports/q3?x=1`;
    await page.goto(original);
    assert.match(page.url(), /\/\.latchkey\/login\?rd=/, `expected the sign-in page, got ${page.url()}`);
    const corp = page.getByRole('link', { name: 'Sign in with Corp SSO' });
    const github = page.getByRole('link', { name: 'Sign in with GitHub' });
    assert.equal(await corp.count(), 1, 'a Corp SSO button');
    assert.equal(await github.count(), 1, 'a GitHub button');
    await shot(page, 'login-providers');
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot(page, 'login-providers-dark');
    await page.emulateMedia({ colorScheme: 'light' });

    step('"Sign in with Corp SSO" leads to the provider\'s login form');
    await Promise.all([page.waitForURL(/\/interaction\//), corp.click()]);
    await page.locator('input[name="login"]').fill('alice');
    await page.locator('input[name="password"]').fill('any password');
    await Promise.all([page.waitForLoadState('load'), page.locator('button[type="submit"]').click()]);
    if (await page.locator('input[name="prompt"][value="consent"]').count()) {
      step('the provider asks for consent');
      await Promise.all([page.waitForURL(original), page.locator('button[type="submit"]').click()]);
    } else {
      await page.waitForURL(original);
    }

    step('back on the exact return URL, signed in, with the identity headers at the app');
    assert.equal(page.url(), original);
    assert.equal(await echoedHeader(page, 'x-auth-email'), 'alice@example.com');
    const roles = (await echoedHeader(page, 'x-auth-roles')) || '';
    assert.ok(roles.split(',').includes('operator'), `role_map gave operator: ${roles}`);
    await shot(page, 'app-after-provider');
    await a.close();

    step('"Sign in with GitHub" (the stand-in) signs in the same person');
    const b = await newContext();
    const gh = await b.newPage();
    await gh.goto(original);
    await Promise.all([
      gh.waitForURL(original),
      gh.getByRole('link', { name: 'Sign in with GitHub' }).click(),
    ]);
    assert.equal(await echoedHeader(gh, 'x-auth-email'), 'alice@example.com');
    await b.close();
    console.log('ok');
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
