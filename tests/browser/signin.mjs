// A person signing in with latchkey, in headless Chromium (driven by
// playwright-core). Run by tests/it/browser.rs, which starts latchkey in
// front of the echo app, a real SMTP sink, and passes:
//
//   APP_URL    http://app.test:PORT (Chromium maps app.test to 127.0.0.1)
//   MAIL_DIR   where the SMTP sink writes each message as N.json
//   SHOT_DIR   where the screenshots go (phone and desktop width per page)
//   CHROMIUM   the browser binary (Debian's /usr/bin/chromium)
//
// JavaScript is off in every page: latchkey's pages must work without it.
// Exits non-zero with a message saying what a person would have seen.

import { chromium } from 'playwright-core';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { need, step, mailbox, linkOf, heading, echoedHeader, shoot, chromiumArgs } from './common.mjs';

const APP_URL = need('APP_URL');
const nextMail = mailbox(need('MAIL_DIR'));
const SHOT_DIR = need('SHOT_DIR');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const APP_HOST = new URL(APP_URL).hostname;

const shot = (page, name) => shoot(page, SHOT_DIR, name);

function codeOf(mail) {
  const m = mail.text.match(/^\s+(\d{6})\s*$/m);
  assert.ok(m, `no code in the email:\n${mail.text}`);
  return m[1];
}

// Signs in `page` from the sign-in page it shows, typing like a person.
async function askForLink(page, email) {
  // The email field has focus when the page opens, and a visible label.
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
  assert.equal(focused, 'email', 'the email field has focus on the sign-in page');
  assert.equal(await page.getByLabel('Email address').count(), 1, 'the field is labelled');
  await page.keyboard.type(email);
  // Tab moves to the button: nothing in between.
  await page.keyboard.press('Tab');
  const next = await page.evaluate(() => document.activeElement && document.activeElement.textContent);
  assert.match(next || '', /Email me a sign-in link/, 'Tab goes from the field to the button');
  await Promise.all([page.waitForLoadState('load'), page.keyboard.press('Enter')]);
  await page.waitForSelector('h1');
  assert.equal(await heading(page), 'Check your email');
}

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: chromiumArgs([APP_HOST]),
  });
  const newContext = () =>
    browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 800 } });
  try {
    // 1. A protected page sends a person to sign in, and back after.
    step('a protected page sends an anonymous person to the sign-in page');
    const a = await newContext();
    const page = await a.newPage();
    const original = `${APP_URL}/reports?q=1`;
    await page.goto(original);
    assert.match(page.url(), /\/\.latchkey\/login\?rd=/, `expected the sign-in page, got ${page.url()}`);
    assert.equal(await heading(page), 'Sign in');
    await shot(page, 'login');
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot(page, 'login-dark');
    await page.emulateMedia({ colorScheme: 'light' });

    step('the person types the email address and is told to check their email');
    await askForLink(page, 'bob@example.com');
    await shot(page, 'check_email');

    step('the email arrives; its link opens a confirm page in the same browser');
    const mail = await nextMail('bob@example.com');
    const mailPage = await a.newPage();
    await mailPage.setContent(mail.html);
    await shot(mailPage, 'email');
    await mailPage.close();
    await page.goto(linkOf(mail));
    assert.equal(await heading(page), 'Continue signing in');
    await shot(page, 'confirm');

    step('the confirm button signs in and lands on the original page with the identity headers');
    await Promise.all([page.waitForURL(original), page.getByRole('button', { name: 'Continue signing in' }).click()]);
    assert.equal(page.url(), original);
    assert.equal(await echoedHeader(page, 'x-auth-email'), 'bob@example.com');
    assert.equal(await echoedHeader(page, 'x-auth-roles'), 'member');
    await shot(page, 'app');

    step('signed in on a second browser too, the account page lists both sessions');
    const second = await newContext();
    const secondPage = await second.newPage();
    await secondPage.goto(original);
    await askForLink(secondPage, 'bob@example.com');
    const mail3 = await nextMail('bob@example.com');
    await secondPage.goto(linkOf(mail3));
    await Promise.all([
      secondPage.waitForURL(original),
      secondPage.getByRole('button', { name: 'Continue signing in' }).click(),
    ]);
    await page.goto(`${APP_URL}/.latchkey/account`);
    assert.equal(await heading(page), 'Your account');
    const main = await page.locator('main').innerText();
    assert.match(main, /bob@example\.com/);
    assert.match(main, /this one/);
    assert.equal(await page.getByRole('button', { name: 'End this session' }).count(), 1);
    await shot(page, 'account');
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot(page, 'account-dark');
    await page.emulateMedia({ colorScheme: 'light' });

    step('ending the other session there signs the second browser out');
    await Promise.all([
      page.waitForURL(/ended=1/),
      page.getByRole('button', { name: 'End this session' }).click(),
    ]);
    assert.match(await page.locator('main').innerText(), /That session has ended\./);
    await secondPage.goto(original);
    assert.match(secondPage.url(), /\/\.latchkey\/login\?rd=/, 'the ended session is signed out');
    await second.close();

    step('a path with mfa = true sends the email session to the step-up page');
    const vault = `${APP_URL}/vault/doc?id=7`;
    await page.goto(vault);
    assert.match(page.url(), /\/\.latchkey\/step-up\?rd=/, `expected the step-up page, got ${page.url()}`);
    assert.equal(await heading(page), 'Confirm it is you');
    await shot(page, 'step_up');
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot(page, 'step_up-dark');
    await page.emulateMedia({ colorScheme: 'light' });

    step('the used link shows the link-expired page');
    await page.goto(linkOf(mail));
    assert.equal(await heading(page), 'This link no longer works');
    await shot(page, 'link_invalid');

    step('a member opening the admin area sees the forbidden page');
    const forbidden = await page.goto(`${APP_URL}/admin/settings`);
    assert.equal(forbidden.status(), 403);
    assert.equal(await heading(page), 'You do not have access');
    assert.match(await page.locator('main').innerText(), /bob@example\.com/);
    await shot(page, 'forbidden');

    step('a malformed address shows the error page');
    const bad = await page.goto(`${APP_URL}/public/..%2fadmin`);
    assert.equal(bad.status(), 400);
    assert.equal(await heading(page), 'Bad request');
    await shot(page, 'error');

    step('logout: confirm, sign out, and the app asks to sign in again');
    await page.goto(`${APP_URL}/.latchkey/logout`);
    assert.equal(await heading(page), 'Sign out?');
    await shot(page, 'logout_confirm');
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Sign out' }).click()]);
    await page.waitForSelector('h1');
    assert.equal(await heading(page), 'You are signed out');
    await shot(page, 'signed_out');
    await page.goto(original);
    assert.match(page.url(), /\/\.latchkey\/login\?rd=/, 'signed out: back to the sign-in page');
    await a.close();

    // 2. Across two browsers: the link asked for in A, opened in B, shows
    // where to open it; the code from the same email, typed in A, signs in.
    step('a link opened in another browser shows the wrong-browser page');
    const asker = await newContext();
    const askerPage = await asker.newPage();
    await askerPage.goto(original);
    await askForLink(askerPage, 'alice@example.com');
    const mail2 = await nextMail('alice@example.com');
    const other = await newContext();
    const otherPage = await other.newPage();
    await otherPage.goto(linkOf(mail2));
    await Promise.all([
      otherPage.waitForLoadState('load'),
      otherPage.getByRole('button', { name: 'Continue signing in' }).click(),
    ]);
    await otherPage.waitForSelector('h1');
    assert.equal(await heading(otherPage), 'Open the link in the browser you used');
    await shot(otherPage, 'wrong_browser');
    await other.close();

    step('the code typed into the browser that asked signs in there');
    const code = codeOf(mail2);
    await askerPage.getByLabel('Sign-in code').fill(code);
    await Promise.all([askerPage.waitForURL(original), askerPage.getByRole('button', { name: 'Sign in' }).click()]);
    assert.equal(await echoedHeader(askerPage, 'x-auth-email'), 'alice@example.com');
    await asker.close();

    writeFileSync(join(SHOT_DIR, 'README.txt'), `Screenshots of latchkey's pages, written by tests/it/browser.rs.\n`);
    console.log('ok');
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
