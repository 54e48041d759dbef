// latchkey's passkey ceremonies, served as /.latchkey/passkey.js (the
// pages' Content-Security-Policy allows scripts from latchkey's own origin
// only, and no inline script). It wires up three places:
//
//   #passkey-sign-in  the sign-in page: "Sign in with a passkey", and
//                     passkey autofill on the email field (conditional
//                     mediation) where the browser offers it;
//   #passkey-add      the account page: "Add a passkey";
//   #passkey-step-up  the step-up page: "Use your passkey".
//
// Each asks latchkey for options (POST .../options), hands them to the
// browser, posts credential.toJSON() back, and goes where the answer says.
// Requests are JSON with the CSRF token in X-Latchkey-CSRF. Without
// WebAuthn (or without this script) the pages work as before, minus these
// buttons, which stay hidden.
(() => {
  'use strict';
  const PKC = window.PublicKeyCredential;
  if (!PKC || !PKC.parseCreationOptionsFromJSON || !PKC.parseRequestOptionsFromJSON || !navigator.credentials) {
    return;
  }

  function csrfOf(box) {
    const field = box.querySelector('input[name=csrf]');
    return box.dataset.csrf || (field && field.value) || '';
  }

  async function post(url, csrf, body) {
    const resp = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-Latchkey-CSRF': csrf },
      body: JSON.stringify(body),
    });
    let data = null;
    try {
      data = await resp.json();
    } catch (_) {
      data = null;
    }
    if (!resp.ok) {
      throw new Error((data && data.message) || `latchkey answered ${resp.status}. Reload the page and try again.`);
    }
    return data || {};
  }

  // What a person reads when a ceremony fails.
  function say(box, e) {
    const el = box.querySelector('#passkey-error');
    let text = e && e.message ? e.message : String(e);
    if (e && e.name === 'NotAllowedError') {
      text = 'The passkey prompt was closed or timed out. Try again.';
    } else if (e && e.name === 'InvalidStateError') {
      text = 'This device already holds a passkey for your account.';
    } else if (e && e.name === 'SecurityError') {
      text = 'This browser does not allow passkeys on this address.';
    }
    if (el) {
      el.textContent = text;
      el.setAttribute('role', 'alert');
      el.hidden = false;
    }
  }

  function quiet(box) {
    const el = box.querySelector('#passkey-error');
    if (el) el.hidden = true;
  }

  // Sign-in page: the button, and autofill on the email field.
  const signIn = document.getElementById('passkey-sign-in');
  if (signIn) {
    const csrf = csrfOf(signIn);
    const rd = signIn.dataset.rd || '';
    let autofill = null;
    const run = async (conditional) => {
      const options = await post('/.latchkey/passkey/login/options', csrf, { rd });
      const request = { publicKey: PKC.parseRequestOptionsFromJSON(options) };
      if (conditional) {
        autofill = new AbortController();
        request.mediation = 'conditional';
        request.signal = autofill.signal;
      }
      const credential = await navigator.credentials.get(request);
      const done = await post('/.latchkey/passkey/login', csrf, credential.toJSON());
      window.location.assign(done.location);
    };
    signIn.hidden = false;
    signIn.querySelector('#passkey-button').addEventListener('click', () => {
      quiet(signIn);
      if (autofill) {
        autofill.abort();
        autofill = null;
      }
      run(false).catch((e) => say(signIn, e));
    });
    if (document.getElementById('email') && PKC.isConditionalMediationAvailable) {
      PKC.isConditionalMediationAvailable().then((yes) => {
        if (!yes) return;
        run(true).catch((e) => {
          if (e && e.name !== 'AbortError') say(signIn, e);
        });
      });
    }
  }

  // Account page: "Add a passkey".
  const add = document.getElementById('passkey-add');
  if (add) {
    const csrf = csrfOf(add);
    add.hidden = false;
    add.addEventListener('submit', (ev) => {
      ev.preventDefault();
      quiet(add);
      const name = add.querySelector('#passkey-name').value;
      (async () => {
        const options = await post('/.latchkey/passkey/register/options', csrf, { name });
        const credential = await navigator.credentials.create({ publicKey: PKC.parseCreationOptionsFromJSON(options) });
        const done = await post('/.latchkey/passkey/register', csrf, credential.toJSON());
        window.location.assign(done.location);
      })().catch((e) => say(add, e));
    });
  }

  // Step-up page: "Use your passkey".
  const stepUp = document.getElementById('passkey-step-up');
  if (stepUp) {
    const csrf = csrfOf(stepUp);
    const rd = stepUp.dataset.rd || '';
    stepUp.hidden = false;
    stepUp.querySelector('#passkey-button').addEventListener('click', () => {
      quiet(stepUp);
      (async () => {
        const options = await post('/.latchkey/step-up/options', csrf, { rd });
        const credential = await navigator.credentials.get({ publicKey: PKC.parseRequestOptionsFromJSON(options) });
        const done = await post('/.latchkey/step-up', csrf, credential.toJSON());
        window.location.assign(done.location);
      })().catch((e) => say(stepUp, e));
    });
  }
})();
