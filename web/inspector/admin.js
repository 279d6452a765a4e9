// The admin token and the write routes. A server started with --admin-token wants the token
// for `watch` and for every POST and DELETE (Authorization: Bearer). The page asks for it
// only when the server says `unauthorized`, and keeps it in sessionStorage: this tab only.

const TOKEN_KEY = 'atrium.adminToken';
const listeners = new Set();

export const adminToken = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || '',
  set(token) {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
    for (const fn of listeners) fn(this.get());
  },
  onChange(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },
};

/** An HTTP error with the server's {code, message}. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = error?.code ?? (status === 401 ? 'unauthorized' : 'http_error');
  }
}

async function send(method, path, body, token) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch (err) {
    throw new ApiError(0, { code: 'network', message: `the server did not answer (${err.message})` });
  }
  const json = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, json?.error);
  return json;
}

/** GET a JSON route (reads need no token). */
export const getJson = (path) => send('GET', path, undefined, '');

/** POST or DELETE with the kept token, if any. Rejects with ApiError. */
export const write = (method, path, body) => send(method, path, body, adminToken.get());

/**
 * Asks to confirm a write in a dialog, then runs it. `run()` does the request; when the
 * server answers `unauthorized` the dialog asks for the admin token and tries again.
 * Resolves with run()'s result, or null when cancelled.
 */
export function confirmWrite(ui, { title, text, confirm, reason = false, run }) {
  ui.title.textContent = title;
  ui.text.textContent = text;
  ui.confirm.textContent = confirm;
  ui.reasonRow.hidden = !reason;
  ui.reason.value = '';
  ui.tokenRow.hidden = true;
  ui.token.value = '';
  ui.error.hidden = true;
  ui.confirm.disabled = false;
  ui.dialog.showModal();
  (reason ? ui.reason : ui.confirm).focus();

  return new Promise((resolve) => {
    const finish = (value) => {
      ui.form.removeEventListener('submit', onSubmit);
      ui.cancel.removeEventListener('click', onCancel);
      ui.dialog.removeEventListener('cancel', onCancel);
      if (ui.dialog.open) ui.dialog.close();
      resolve(value);
    };
    const onCancel = (ev) => {
      ev?.preventDefault();
      finish(null);
    };
    const onSubmit = async (ev) => {
      ev.preventDefault();
      if (!ui.tokenRow.hidden) adminToken.set(ui.token.value.trim());
      ui.error.hidden = true;
      ui.confirm.disabled = true;
      try {
        const result = await run(ui.reason.value.trim());
        finish(result ?? true);
      } catch (err) {
        ui.confirm.disabled = false;
        if (err.code === 'unauthorized') {
          const had = !ui.tokenRow.hidden && ui.token.value.trim() !== '';
          ui.tokenRow.hidden = false;
          ui.token.value = '';
          ui.error.textContent = had ? 'That token was not accepted.' : 'This server needs its admin token for this. It is kept in this tab only.';
          ui.error.hidden = false;
          ui.token.focus();
        } else {
          ui.error.textContent = `${err.code}: ${err.message}`;
          ui.error.hidden = false;
        }
      }
    };
    ui.form.addEventListener('submit', onSubmit);
    ui.cancel.addEventListener('click', onCancel);
    ui.dialog.addEventListener('cancel', onCancel);
  });
}
