// Passkeys with latchkey, in headless Chromium with the CDP virtual
// authenticator (playwright-core's newCDPSession). Run by
// tests/it/browser_passkeys.rs, which starts latchkey in front of the echo
// app at app.localhost (a secure context over http) and passes:
//
//   APP_URL    http://app.localhost:PORT
//   MAIL_DIR   where the SMTP sink writes each message as N.json
//   SHOT_DIR   where the screenshots go (unset: none are taken)
//   CHROMIUM   the browser binary (Debian's /usr/bin/chromium)
//
// Each browser context gets its own virtual authenticator; a passkey is
// carried from one to another with WebAuthn.getCredentials/addCredential
// (the sign count with it), which is also how a "cloned" authenticator
// with a lower count is made. Exits non-zero saying what a person would
// have seen.

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { need, step, mailbox, linkOf, heading, echoedHeader, shoot, chromiumArgs } from './common.mjs';

const APP_URL = need('APP_URL');
const nextMail = mailbox(need('MAIL_DIR'));
const SHOT_DIR = process.env.SHOT_DIR || '';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const EMAIL = 'bob@example.com';

// Saves the page at both widths, light and dark (`name` and `name-dark`).
async function shots(page, name) {
  if (!SHOT_DIR) return;
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await shoot(page, SHOT_DIR, scheme === 'light' ? name : `${name}-dark`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

// /.latchkey/me as this browser (from the page, on APP_URL's origin): the
// identity JSON, or null when not signed in.
async function me(page) {
  return page.evaluate(async () => {
    const r = await fetch('/.latchkey/me', { headers: { accept: 'application/json' } });
    return r.status === 200 ? r.json() : null;
  });
}

// A virtual platform authenticator for `page`, holding `credential` if given.
async function authenticator(page, credential) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  if (credential) {
    await cdp.send('WebAuthn.addCredential', { authenticatorId, credential });
  }
  return {
    credentials: async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials,
  };
}

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: chromiumArgs(['app.localhost', 'auth.localhost']),
  });
  // `autofill: false`: a browser without passkey autofill (conditional
  // mediation), so the sign-in page's button is what signs in.
  const newContext = async ({ autofill = true } = {}) => {
    const c = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    if (!autofill) {
      await c.addInitScript(() => {
        if (window.PublicKeyCredential) {
          window.PublicKeyCredential.isConditionalMediationAvailable = async () => false;
        }
      });
    }
    return c;
  };
  try {
    step('bob signs in by email link, with JavaScript on');
    const a = await newContext();
    const page = await a.newPage();
    const authA = await authenticator(page);
    const original = `${APP_URL}/reports?q=1`;
    await page.goto(original);
    assert.match(page.url(), /\/\.latchkey\/login\?rd=/, `expected the sign-in page, got ${page.url()}`);
    assert.equal(
      await page.locator('#email').getAttribute('autocomplete'),
      'username webauthn',
      'the email field offers passkey autofill'
    );
    await page.locator('#email').fill(EMAIL);
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Email me a sign-in link' }).click()]);
    await page.waitForSelector('h1');
    assert.equal(await heading(page), 'Check your email');
    await page.goto(linkOf(await nextMail(EMAIL)));
    await Promise.all([page.waitForURL(original), page.getByRole('button', { name: 'Continue signing in' }).click()]);
    assert.equal((await me(page)).amr, 'email');

    step('the account page adds a passkey named Laptop');
    await page.goto(`${APP_URL}/.latchkey/account`);
    assert.match(await page.locator('main').innerText(), /No passkey yet/);
    await page.getByLabel('Name for a new passkey').fill('Laptop');
    await Promise.all([page.waitForURL(/passkey=added/), page.getByRole('button', { name: 'Add a passkey' }).click()]);
    let main = await page.locator('main').innerText();
    assert.match(main, /Your passkey was added/);
    assert.match(main, /Laptop/);
    assert.match(main, /last used never/);
    const made = await authA.credentials();
    assert.equal(made.length, 1, 'one credential on the authenticator');
    assert.equal(made[0].isResidentCredential, true, 'a discoverable credential');
    assert.equal(made[0].rpId, 'app.localhost');

    step('and renames it');
    await page.getByLabel('New name for Laptop').fill('Work laptop');
    await Promise.all([page.waitForURL(/passkey=renamed/), page.getByRole('button', { name: 'Rename' }).click()]);
    main = await page.locator('main').innerText();
    assert.match(main, /The passkey was renamed/);
    assert.equal(await page.getByLabel('New name for Work laptop').inputValue(), 'Work laptop');
    await shots(page, 'account-passkey');

    step('an mfa = true path sends the email session to step-up, and the passkey lands on the exact URL');
    const vault = `${APP_URL}/vault/doc?id=7&x=a%20b`;
    await page.goto(vault);
    assert.match(page.url(), /\/\.latchkey\/step-up\?rd=/, `expected the step-up page, got ${page.url()}`);
    assert.equal(await heading(page), 'Confirm it is you');
    await shots(page, 'step_up-passkey');
    await Promise.all([page.waitForURL(vault), page.getByRole('button', { name: 'Use your passkey' }).click()]);
    assert.equal(page.url(), vault);
    assert.equal(await echoedHeader(page, 'x-auth-email'), EMAIL);
    assert.equal((await me(page)).amr, 'passkey', 'the new session proved a passkey');
    await page.goto(`${APP_URL}/.latchkey/account`);
    main = await page.locator('main').innerText();
    assert.match(main, /signed in with a passkey/);
    assert.doesNotMatch(main, /last used never/);

    step('bob signs out');
    await page.goto(`${APP_URL}/.latchkey/logout`);
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Sign out' }).click()]);
    await page.waitForSelector('h1');
    assert.equal(await heading(page), 'You are signed out');
    assert.equal(await me(page), null);

    step('another browser holding the passkey signs in with the button');
    const b = await newContext({ autofill: false });
    const pageB = await b.newPage();
    const authB = await authenticator(pageB, (await authA.credentials())[0]);
    const there = `${APP_URL}/reports?by=button`;
    await pageB.goto(there);
    assert.match(pageB.url(), /\/\.latchkey\/login\?rd=/);
    await pageB.getByRole('button', { name: 'Sign in with a passkey' }).waitFor();
    await shots(pageB, 'passkey-login');
    await Promise.all([pageB.waitForURL(there), pageB.getByRole('button', { name: 'Sign in with a passkey' }).click()]);
    assert.equal(await echoedHeader(pageB, 'x-auth-email'), EMAIL);
    assert.equal(await echoedHeader(pageB, 'x-auth-roles'), 'member');
    const who = await me(pageB);
    assert.equal(who.user.email, EMAIL);
    assert.equal(who.amr, 'passkey');
    step('a passkey session passes the mfa = true path at once');
    await pageB.goto(vault);
    assert.equal(pageB.url(), vault);
    assert.equal(await echoedHeader(pageB, 'x-auth-email'), EMAIL);

    step('a third browser signs in by passkey autofill on the email field');
    const c = await newContext();
    const pageC = await c.newPage();
    const authC = await authenticator(pageC, (await authB.credentials())[0]);
    const auto = `${APP_URL}/reports?by=autofill`;
    await pageC.goto(auto, { waitUntil: 'commit' });
    try {
      await pageC.waitForURL(auto, { timeout: 5000 });
      step('(the autofill request was answered as the page opened)');
    } catch (_) {
      step('(the autofill offer is picked from the email field)');
      // The autofill offer waits for the field: pick it as a person would.
      await pageC.locator('#email').click();
      await pageC.waitForURL(auto, { timeout: 10000 });
    }
    assert.equal(await echoedHeader(pageC, 'x-auth-email'), EMAIL);
    assert.equal((await me(pageC)).amr, 'passkey');

    step('a copy of the passkey whose sign count went back is refused');
    const latest = (await authC.credentials())[0];
    assert.ok(latest.signCount >= 3, `the authenticator counted its uses (${latest.signCount})`);
    const d = await newContext({ autofill: false });
    const pageD = await d.newPage();
    await authenticator(pageD, { ...latest, signCount: 0 });
    await pageD.goto(`${APP_URL}/reports?by=clone`);
    await pageD.getByRole('button', { name: 'Sign in with a passkey' }).click();
    const error = pageD.locator('#passkey-error');
    await error.waitFor({ state: 'visible' });
    assert.match(await error.innerText(), /counter went backwards/);
    assert.match(pageD.url(), /\/\.latchkey\/login\?rd=/, 'still on the sign-in page');
    assert.equal(await me(pageD), null, 'no session');

    step('removing the passkey on the account page ends its use');
    await pageC.goto(`${APP_URL}/.latchkey/account`);
    await Promise.all([
      pageC.waitForURL(/passkey=removed/),
      pageC.getByRole('button', { name: 'Remove this passkey' }).click(),
    ]);
    main = await pageC.locator('main').innerText();
    assert.match(main, /It no longer signs you in/);
    assert.match(main, /No passkey yet/);
    const e = await newContext({ autofill: false });
    const pageE = await e.newPage();
    await authenticator(pageE, (await authC.credentials())[0]);
    await pageE.goto(`${APP_URL}/reports?by=removed`);
    await pageE.getByRole('button', { name: 'Sign in with a passkey' }).click();
    const gone = pageE.locator('#passkey-error');
    await gone.waitFor({ state: 'visible' });
    assert.match(await gone.innerText(), /not registered/);
    assert.equal(await me(pageE), null, 'no session');

    console.log('ok');
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
