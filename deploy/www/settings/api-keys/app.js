// app.js: Settings → API Keys. Lists, creates, edits, rotates, revokes and deletes a team's API
// keys and warns of keys about to expire, by calling the documented /v1 endpoints (api.md §3,
// §6.3, §6.4) with the browser's web-server credentials.
// Plain ES module, no dependencies: everything the page shows is built with DOM calls, never
// from HTML strings, so names typed by users cannot inject markup.

const PAGE_SIZE = 20;
const SEARCH_DELAY_MS = 300;
const ADMIN_ROLES = new Set(['OWNER', 'ADMIN']);
const PERMISSIONS = [
  {value: 'read_all', label: 'Read All',
   help: 'Read every resource of the team in every app, including resources added later. Good for reporting and dashboards.'},
  {value: 'write_all', label: 'Write All',
   help: 'Read and write everything. Use sparingly.'},
  {value: 'restricted', label: 'Restrict All',
   help: 'Start from no permissions and choose exactly the scopes the integration needs. Best for production.'},
];
const PERMISSION_LABEL = Object.fromEntries(PERMISSIONS.map((p) => [p.value, p.label]));
const STATUS_LABEL = {active: 'Active', expired: 'Expired', revoked: 'Revoked'};
const FIELD_LABEL = {name: 'Name', permission: 'Permission set', scopes: 'Scopes', expires_at: 'Expiration date',
  rate_limit: 'Rate limit', 'rate_limit.requests': 'Maximum requests',
  'rate_limit.per_seconds': 'Time window in seconds', allowed_ips: 'Allowed IP addresses',
  grace_period_hours: 'Grace period'};
// The rate limit's time window is typed as a count of one of these units (api.md §6.1: per_seconds ≤ 1 day).
const RATE_UNITS = [
  {seconds: 1, one: 'second', many: 'seconds'},
  {seconds: 60, one: 'minute', many: 'minutes'},
  {seconds: 3600, one: 'hour', many: 'hours'},
  {seconds: 86400, one: 'day', many: 'days'},
];
const RATE_MAX_REQUESTS = 1000000;
const RATE_MAX_SECONDS = 86400;
const IPS_MAX = 100;
// Rotation (api.md §6.3): how long the old key keeps working; any whole number of hours 0–720.
const GRACE_CHOICES = [
  {hours: 0, label: 'Immediately', help: 'Revoked now'},
  {hours: 1, label: '1 hour'},
  {hours: 24, label: '24 hours (default)'},
  {hours: 168, label: '7 days'},
  {hours: 720, label: '30 days'},
];
const GRACE_DEFAULT_HOURS = 24;
const EXPIRY_WARN_DAYS = 7;  // the banner and the rows' "Expires in N days" (api.md §6.4)
const DAY_MS = 86400000;
const STALE_DAYS = 90;  // "Not used for 4 months" and the filter for it (api.md §6.8)
const USAGE_DAYS = 7;   // View Details' chart
const LEAK_REPORTER = 'leak-report';  // revoked_by of a key a secret scanner reported (api.md §6.5)
// The status classes of a usage bucket, in the chart's order (bottom up), with their words.
const USAGE_CLASSES = [
  {key: '2xx', label: 'Succeeded (2xx)'},
  {key: '3xx', label: 'Redirected (3xx)'},
  {key: '4xx', label: 'Refused (4xx)'},
  {key: '429', label: 'Rate-limited (429)'},
  {key: '5xx', label: 'Server errors (5xx)'},
];

const $ = (id) => document.getElementById(id);

const state = {
  me: null,
  team: null,            // {id, name, role}
  catalog: null,         // [{app, resources: [{name, title, read, write}]}]
  catalogError: null,
  keys: new Map(),       // id -> key object, the rows shown
  cursor: null,
  listAbort: null,
  menuKey: null,         // key id of the open row menu
  menuButton: null,
  detailsKey: null,      // key object shown in the details dialog
  detailsReturn: null,   // element to focus when the details dialog closes
  rotateKey: null,       // key object being rotated in the rotate dialog
  rotateReturn: null,    // element to focus when the rotate dialog closes without rotating
  secretReturn: null,    // () => element to focus when the one-time screen closes
  expiryAbort: null,     // the banner's request in flight
  related: new Map(),    // key id -> key object (or null: deleted) of keys linked by rotation
};

// ---------------------------------------------------------------------------------------------
// small helpers

/** Creates an element: h('p', {class: 'x', onclick: fn}, 'text', child, ...); svg(...) the same in SVG. */
function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

function svg(tag, attrs, ...children) {
  return build(document.createElementNS('http://www.w3.org/2000/svg', tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function show(el, on = true) { el.hidden = !on; }

function announce(text) {
  // Re-set so that the same message twice is read twice.
  const s = $('page-status');
  s.textContent = '';
  window.setTimeout(() => { s.textContent = text; }, 50);
}

const dateTimeFmt = new Intl.DateTimeFormat(undefined, {dateStyle: 'medium', timeStyle: 'short'});
const dateFmt = new Intl.DateTimeFormat(undefined, {dateStyle: 'medium'});
const exactFmt = new Intl.DateTimeFormat(undefined, {dateStyle: 'full', timeStyle: 'long'});
const relFmt = new Intl.RelativeTimeFormat('en', {numeric: 'always'});

function fmtDateTime(iso) { return iso ? dateTimeFmt.format(new Date(iso)) : ''; }
function fmtExact(iso) { return exactFmt.format(new Date(iso)); }

/** "3 minutes ago", "in 2 days", "just now". */
function relTime(iso, now = Date.now()) {
  const s = Math.round((Date.parse(iso) - now) / 1000);
  const abs = Math.abs(s);
  if (abs < 45) return s <= 0 ? 'just now' : 'in a few seconds';
  const units = [['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400],
                 ['hour', 3600], ['minute', 60]];
  for (const [unit, secs] of units) {
    if (abs >= secs || unit === 'minute') return relFmt.format(Math.round(s / secs), unit);
  }
  return '';
}

/** Whole local calendar days from today to the day of `iso`: 0 today, 1 tomorrow. */
function daysUntil(iso, now = new Date()) {
  const d = new Date(iso);
  return Math.round((Date.UTC(d.getFullYear(), d.getMonth(), d.getDate())
    - Date.UTC(now.getFullYear(), now.getMonth(), now.getDate())) / DAY_MS);
}

/** True for an active key, not rotated, that stops working within 7 days (what the banner counts). */
function expiresSoon(k, now = Date.now()) {
  return k.status === 'active' && !k.rotated_to && Boolean(k.expires_at)
    && Date.parse(k.expires_at) - now <= EXPIRY_WARN_DAYS * DAY_MS;
}

/** "Expires today", "Expires in 1 day", "Expires in 3 days". */
function expiresInText(iso) {
  const n = daysUntil(iso);
  if (n <= 0) return 'Expires today';
  return n === 1 ? 'Expires in 1 day' : `Expires in ${n} days`;
}

/** A <time> element with the exact time on hover (and for screen readers via the title). */
function timeEl(iso, text, cls) {
  return h('time', {datetime: iso, title: fmtExact(iso), class: cls}, text);
}

/** The local calendar date (YYYY-MM-DD) of a timestamp, for <input type=date>. */
function localDate(iso) {
  const d = new Date(iso);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/** The last second of a local calendar day, as RFC 3339 UTC ("2026-12-31T22:59:59Z"). */
function endOfDay(date) {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(y, m - 1, d, 23, 59, 59).toISOString().replace('.000Z', 'Z');
}

function resourceTitle(name) {
  const t = name.replace(/_/g, ' ');
  return t.charAt(0).toUpperCase() + t.slice(1);
}

function scopeSummary(scopes) {
  // "customers:read", "invoices:write" → "Customers: read · Invoices: write"
  return scopes.map((s) => {
    const [res, access] = s.split(':');
    return `${resourceTitle(res)}: ${access}`;
  }).join(' · ');
}

const countFmt = new Intl.NumberFormat('en-US');

/** The window as its largest whole unit: 60 → {count: 1, unit: minute}, 90 → {count: 90, unit: second}. */
function rateWindow(perSeconds) {
  for (const u of [...RATE_UNITS].reverse()) {
    if (perSeconds % u.seconds === 0) return {count: perSeconds / u.seconds, unit: u};
  }
  return {count: perSeconds, unit: RATE_UNITS[0]};
}

/** "100 requests per minute", "1 request per 30 seconds", "None". */
function rateText(rl) {
  if (!rl) return 'None';
  const {count, unit} = rateWindow(rl.per_seconds);
  const what = `${countFmt.format(rl.requests)} ${rl.requests === 1 ? 'request' : 'requests'}`;
  return count === 1 ? `${what} per ${unit.one}` : `${what} per ${countFmt.format(count)} ${unit.many}`;
}

/**
 * The entries of the allowed-IPs text: one per line, or separated by commas or spaces.
 * Each is {text, line (1-based), start, end} (offsets in the text, to select it).
 */
function ipEntries(text) {
  const out = [];
  const re = /[^\s,]+/g;
  let m;
  while ((m = re.exec(text)) !== null) {
    const line = text.slice(0, m.index).split('\n').length;
    out.push({text: m[0], line, start: m.index, end: m.index + m[0].length});
  }
  return out;
}

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HEX_GROUP_RE = /^[0-9A-Fa-f]{1,4}$/;

function isIPv6(s) {
  const halves = s.split('::');
  if (halves.length > 2) return false;
  const groups = (part) => (part === '' ? [] : part.split(':'));
  const all = halves.flatMap(groups);
  let count = 0;
  for (let i = 0; i < all.length; i++) {
    const g = all[i];
    if (HEX_GROUP_RE.test(g)) count += 1;
    else if (i === all.length - 1 && IPV4_RE.test(g)) count += 2;  // ::ffff:192.0.2.1
    else return false;
  }
  // The IPv4 tail must be the very last thing ("1::192.0.2.1", not "::192.0.2.1:1" nor "1.2.3.4::").
  if (halves.length === 2 && halves[1] === '' && all.length && all[all.length - 1].includes('.')) return false;
  return halves.length === 2 ? count < 8 : count === 8;
}

/**
 * The shape check of one entry, the same rules as the server's (inet_pton and a prefix of 0–32
 * or 0–128): null when it looks right, else why not, in the server's words. The server has the
 * last word (for instance on the prefix of an IPv4-mapped IPv6 block).
 */
function ipProblem(entry) {
  const slash = entry.indexOf('/');
  const addr = slash < 0 ? entry : entry.slice(0, slash);
  const v4 = IPV4_RE.test(addr);
  if (!v4 && !isIPv6(addr)) return 'is not an IPv4 or IPv6 address or CIDR block';
  if (slash < 0) return null;
  const prefix = entry.slice(slash + 1);
  if (!/^(0|[1-9]\d{0,2})$/.test(prefix)) return 'has a prefix length that is not a number';
  if (Number(prefix) > (v4 ? 32 : 128)) return `has a prefix length out of range (${v4 ? 'IPv4: 0 to 32' : 'IPv6: 0 to 128'})`;
  return null;
}

// ---------------------------------------------------------------------------------------------
// the API

class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || [];
  }
}

/** Calls the API on this origin with the browser's credentials; resolves to the JSON body. */
async function api(method, path, body, signal) {
  const init = {method, credentials: 'same-origin', headers: {Accept: 'application/json'}, signal};
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'Could not reach the server. Check your connection and try again.');
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    data = null;
  }
  if (res.ok && data) return data;
  const err = data && data.error;
  if (err && typeof err.message === 'string') {
    let msg = err.message;
    if (res.status === 503) msg += ' Please try again in a moment.';
    throw new ApiError(res.status, err.code, msg, Array.isArray(err.details) ? err.details : []);
  }
  if (res.status === 401) {
    throw new ApiError(401, 'unauthenticated', 'You are not signed in. Reload the page to sign in again.');
  }
  throw new ApiError(res.status, 'http', `The server answered ${res.status} ${res.statusText}. Please try again.`);
}

const teamPath = (suffix = '') => `/v1/teams/${encodeURIComponent(state.team.id)}/api-keys${suffix}`;

/** "Expiration date must be in the future." from {field: "expires_at", message: "must be …"}. */
function detailSentence(d) {
  const base = (d.field || '').replace(/\[\d+\]$/, '');
  const label = FIELD_LABEL[base];
  let msg = String(d.message || 'is not valid');
  if (label && /^(must|is|has|can|should|was)\b/.test(msg)) msg = `${label} ${msg}`;
  else msg = msg.charAt(0).toUpperCase() + msg.slice(1);
  return /[.!?]$/.test(msg) ? msg : `${msg}.`;
}

function showBanner(el, message) {
  el.replaceChildren();
  if (message) el.append(message);
  show(el, Boolean(message));
}

// ---------------------------------------------------------------------------------------------
// the key form (create and edit share it)

let formSeq = 0;

/**
 * Builds name, permission set, scopes grid and expiration fields into `container`.
 * Returns an object to read, fill and annotate them.
 */
function keyForm(container, {mode}) {
  const p = `kf${++formSeq}`;
  const errors = {};

  // The message element of a field: id "<input id>-error", named in its aria-describedby.
  function fieldError(key, idBase = key) {
    const el = h('p', {class: 'field-error', id: `${p}-${idBase}-error`, hidden: true});
    errors[key] = el;
    return el;
  }

  // name
  const name = h('input', {id: `${p}-name`, name: 'name', type: 'text', maxlength: 100,
    autocomplete: 'off', required: true, 'aria-describedby': `${p}-name-hint ${p}-name-error`,
    placeholder: 'e.g. Zapier production, Reporting service'});
  const nameField = h('div', {class: 'field'},
    h('label', {for: name.id}, 'Name'),
    h('p', {class: 'hint', id: `${p}-name-hint`},
      'A name that tells you which integration uses it, such as “Zapier production” or “Reporting service”.'),
    name, fieldError('name'));

  // permission set
  const permInputs = {};
  const permSet = h('fieldset', {class: 'field perms', 'aria-describedby': `${p}-permission-error`},
    h('legend', {}, 'Permission set'),
    PERMISSIONS.map((perm) => {
      const id = `${p}-perm-${perm.value}`;
      const input = h('input', {type: 'radio', name: `${p}-permission`, id, value: perm.value,
        'aria-describedby': `${id}-help`});
      permInputs[perm.value] = input;
      return h('div', {class: 'choice'}, input,
        h('div', {class: 'choice-text'},
          h('label', {for: id, class: 'choice-title'}, perm.label),
          h('span', {class: 'choice-help', id: `${id}-help`}, perm.help)));
    }),
    fieldError('permission'));

  // scopes: None / Read / Write per resource, grouped by app
  const scopeInputs = {}; // resource -> {none, read, write}
  const scopesBody = h('div', {class: 'scope-apps'});
  const scopesSet = h('fieldset', {class: 'field scopes', hidden: true,
    'aria-describedby': `${p}-scopes-hint ${p}-scopes-error`},
    h('legend', {}, 'Scopes'),
    h('p', {class: 'hint', id: `${p}-scopes-hint`},
      'Choose the access the key needs to each resource. Write includes read.'),
    scopesBody, fieldError('scopes'));

  function buildScopes() {
    scopesBody.replaceChildren();
    if (!state.catalog) {
      scopesBody.append(h('p', {class: 'field-error'},
        `The list of scopes could not be loaded: ${state.catalogError || 'unknown error'}`));
      return;
    }
    for (const app of state.catalog) {
      const rows = app.resources.map((res) => {
        const group = `${p}-scope-${res.name}`;
        const radios = {};
        const choice = (access, label, help) => {
          const id = `${group}-${access}`;
          radios[access] = h('input', {type: 'radio', name: group, id, value: access,
            checked: access === 'none', title: help || null});
          return h('span', {class: 'seg'}, radios[access], h('label', {for: id}, label));
        };
        scopeInputs[res.name] = radios;
        return h('fieldset', {class: 'scope-row'},
          h('legend', {}, res.title),
          h('span', {class: 'segs'},
            choice('none', 'None'), choice('read', 'Read', res.read), choice('write', 'Write', res.write)));
      });
      scopesBody.append(h('fieldset', {class: 'scope-app'},
        h('legend', {}, resourceTitle(app.app)), rows));
    }
  }
  buildScopes();

  // expiration
  const expires = h('input', {id: `${p}-expires`, name: 'expires', type: 'date',
    'aria-describedby': `${p}-expires-hint ${p}-expires-error`});
  const expiresNote = h('span', {id: `${p}-expires-note`});
  const clearBtn = h('button', {type: 'button', class: 'btn btn-small', onclick: () => {
    expires.value = '';
    expires.dispatchEvent(new Event('input', {bubbles: true}));
    expires.focus();
  }}, 'No expiration');
  const expiresField = h('div', {class: 'field'},
    h('label', {for: expires.id}, 'Expiration date ', h('span', {class: 'optional'}, '(optional)')),
    h('p', {class: 'hint', id: `${p}-expires-hint`},
      'The key stops working at the end of this day (your local time). Leave empty for a key that never expires. ',
      expiresNote),
    h('div', {class: 'inline'}, expires, clearBtn),
    fieldError('expires_at', 'expires'));

  // rate limit: "Limit requests" reveals "N requests per M unit"
  const rateOn = h('input', {type: 'checkbox', id: `${p}-rate-on`, 'aria-controls': `${p}-rate-inputs`,
    'aria-describedby': `${p}-rate-hint ${p}-rate-error`});
  const rateReq = h('input', {id: `${p}-rate-requests`, type: 'number', min: 1, max: RATE_MAX_REQUESTS, step: 1,
    inputmode: 'numeric', class: 'num', 'aria-describedby': `${p}-rate-requests-error`});
  const ratePer = h('input', {id: `${p}-rate-per`, type: 'number', min: 1, step: 1, inputmode: 'numeric',
    class: 'num', 'aria-describedby': `${p}-rate-per-error`});
  const rateUnit = h('select', {id: `${p}-rate-unit`, 'aria-describedby': `${p}-rate-per-error`},
    RATE_UNITS.map((u) => h('option', {value: u.seconds}, u.one)));
  const rateInputs = h('div', {class: 'rate-inputs', id: `${p}-rate-inputs`, hidden: true},
    h('div', {class: 'field-inline'}, h('label', {for: rateReq.id}, 'Maximum requests'), rateReq),
    h('div', {class: 'field-inline'}, h('label', {for: ratePer.id}, 'Per'),
      h('div', {class: 'inline'}, ratePer,
        h('label', {for: rateUnit.id, class: 'visually-hidden'}, 'Time unit'), rateUnit)));
  const rateSet = h('fieldset', {class: 'field rate'},
    h('legend', {}, 'Rate limit ', h('span', {class: 'optional'}, '(optional)')),
    h('p', {class: 'hint', id: `${p}-rate-hint`},
      'Requests over the limit are refused with 429 until the time window has passed. '
      + 'Leave unticked for no limit.'),
    h('div', {class: 'check'}, rateOn, h('label', {for: rateOn.id}, 'Limit requests')),
    rateInputs,
    fieldError('rate_limit.requests', 'rate-requests'),
    fieldError('rate_limit.per_seconds', 'rate-per'),
    fieldError('rate_limit', 'rate'));

  function syncRate() {
    show(rateInputs, rateOn.checked);
    const many = ratePer.value.trim() !== '1';
    for (const [i, u] of RATE_UNITS.entries()) rateUnit.options[i].textContent = many ? u.many : u.one;
  }
  rateOn.addEventListener('change', () => {
    syncRate();
    for (const k of ['rate_limit', 'rate_limit.requests', 'rate_limit.per_seconds']) clearField(k);
    if (rateOn.checked && !rateReq.value) rateReq.focus();
  });
  ratePer.addEventListener('input', syncRate);

  // allowed IP addresses: one per line (commas and spaces also separate them)
  const ips = h('textarea', {id: `${p}-ips`, name: 'allowed_ips', rows: 4, spellcheck: 'false',
    autocomplete: 'off', autocapitalize: 'off', class: 'ips',
    'aria-describedby': `${p}-ips-hint ${p}-ips-error`, placeholder: '203.0.113.0/24\n2001:db8::/32'});
  const ipsField = h('div', {class: 'field'},
    h('label', {for: ips.id}, 'Allowed IP addresses ', h('span', {class: 'optional'}, '(optional)')),
    h('p', {class: 'hint', id: `${p}-ips-hint`},
      `One IPv4 or IPv6 address or CIDR block per line, up to ${IPS_MAX}. Requests from anywhere else are `
      + 'refused with 403. Leave empty to allow requests from anywhere.'),
    ips, fieldError('allowed_ips', 'ips'));
  let ipsSent = [];  // the entries of the last values() call: the server's allowed_ips[i] are theirs

  container.replaceChildren(nameField, permSet, scopesSet, expiresField, rateSet, ipsField);

  // A field's message goes away as soon as the user changes that field.
  function clearField(key) {
    const el = errors[key];
    el.textContent = '';
    el.hidden = true;
    for (const t of invalidTarget[key]) t.removeAttribute('aria-invalid');
    if (key === 'permission') permSet.classList.remove('invalid');
    if (key === 'scopes') scopesSet.classList.remove('invalid');
    if (key.startsWith('rate_limit')
        && ['rate_limit', 'rate_limit.requests', 'rate_limit.per_seconds'].every((k) => !errors[k] || errors[k].hidden)) {
      rateSet.classList.remove('invalid');
    }
  }
  name.addEventListener('input', () => clearField('name'));
  expires.addEventListener('input', () => clearField('expires_at'));
  rateReq.addEventListener('input', () => clearField('rate_limit.requests'));
  for (const el of [ratePer, rateUnit]) el.addEventListener('input', () => clearField('rate_limit.per_seconds'));
  ips.addEventListener('input', () => clearField('allowed_ips'));
  // Inline: a wrong entry is said as soon as the user leaves the field, not only on submit.
  ips.addEventListener('change', () => {
    clearField('allowed_ips');
    form.showErrors(ipChecks(ips.value), {focus: false});
  });
  permSet.addEventListener('change', () => clearField('permission'));
  scopesSet.addEventListener('change', () => clearField('scopes'));

  function permission() {
    const checked = Object.values(permInputs).find((i) => i.checked);
    return checked ? checked.value : '';
  }
  function syncScopes() { show(scopesSet, permission() === 'restricted'); }
  Object.values(permInputs).forEach((i) => i.addEventListener('change', syncScopes));

  function scopes() {
    const out = [];
    for (const [res, radios] of Object.entries(scopeInputs)) {
      if (radios.write.checked) out.push(`${res}:write`);
      else if (radios.read.checked) out.push(`${res}:read`);
    }
    return out;
  }

  const focusTarget = {
    name: () => name,
    permission: () => Object.values(permInputs).find((i) => i.checked) || permInputs.read_all,
    scopes: () => {
      const first = Object.values(scopeInputs)[0];
      return first ? (Object.values(first).find((i) => i.checked) || first.none) : permInputs.restricted;
    },
    expires_at: () => expires,
    rate_limit: () => rateOn,
    'rate_limit.requests': () => rateReq,
    'rate_limit.per_seconds': () => ratePer,
    allowed_ips: () => ips,
  };
  const invalidTarget = {name: [name], permission: [], scopes: [], expires_at: [expires], rate_limit: [rateOn],
    'rate_limit.requests': [rateReq], 'rate_limit.per_seconds': [ratePer, rateUnit], allowed_ips: [ips]};

  /** The rate limit typed: null (unticked), {requests, per_seconds} or, when not whole numbers, NaNs. */
  function rateLimit() {
    if (!rateOn.checked) return null;
    const whole = (el) => (/^\d+$/.test(el.value.trim()) ? Number(el.value.trim()) : NaN);
    return {requests: whole(rateReq), per_seconds: whole(ratePer) * Number(rateUnit.value)};
  }

  /** Problems of the allowed-IPs text, as the server would name them (allowed_ips[i]). */
  function ipChecks(text) {
    const entries = ipEntries(text);
    if (entries.length > IPS_MAX) {
      return [{field: 'allowed_ips', message: `List at most ${IPS_MAX} addresses or blocks (there are ${entries.length}).`}];
    }
    return entries.map((e, i) => ({field: `allowed_ips[${i}]`, message: ipProblem(e.text), entries}))
      .filter((d) => d.message);
  }

  /** "Line 2: “10.0.0.0/33” has a prefix length out of range." for allowed_ips[i]. */
  function ipSentence(d, entries) {
    const m = /^allowed_ips\[(\d+)\]$/.exec(d.field || '');
    const e = m && entries[Number(m[1])];
    if (!e) return detailSentence(d);
    const msg = String(d.message || 'is not valid');
    return `Line ${e.line}: “${e.text}” ${/[.!?]$/.test(msg) ? msg : `${msg}.`}`;
  }

  const form = {
    mode,
    values() {
      ipsSent = ipEntries(ips.value);
      return {name: name.value, permission: permission(), scopes: scopes(), expires: expires.value,
        rate_limit: rateLimit(), allowed_ips: ipsSent.map((e) => e.text)};
    },
    fill(key) {
      name.value = key ? key.name : '';
      for (const i of Object.values(permInputs)) i.checked = Boolean(key) && i.value === key.permission;
      for (const [res, radios] of Object.entries(scopeInputs)) {
        const s = key ? key.scopes : [];
        const access = s.includes(`${res}:write`) ? 'write' : s.includes(`${res}:read`) ? 'read' : 'none';
        radios[access].checked = true;
      }
      expires.value = key && key.expires_at ? localDate(key.expires_at) : '';
      expires.min = localDate(new Date().toISOString());
      if (key && key.status === 'expired') {
        expiresNote.textContent = `This key expired ${fmtDateTime(key.expires_at)}: pick a new date (or none) to reactivate it.`;
      } else {
        expiresNote.textContent = '';
      }
      const rl = key ? key.rate_limit : null;
      rateOn.checked = Boolean(rl);
      if (rl) {
        const {count, unit} = rateWindow(rl.per_seconds);
        rateReq.value = String(rl.requests);
        ratePer.value = String(count);
        rateUnit.value = String(unit.seconds);
      } else {
        rateReq.value = '';
        ratePer.value = '1';
        rateUnit.value = '60';
      }
      ips.value = key && key.allowed_ips ? key.allowed_ips.join('\n') : '';
      syncRate();
      syncScopes();
      form.clearErrors();
    },
    rebuildScopes() {
      const keep = scopes();
      buildScopes();
      for (const s of keep) {
        const [res, access] = s.split(':');
        if (scopeInputs[res]) scopeInputs[res][access].checked = true;
      }
    },
    clearErrors() {
      for (const k of Object.keys(errors)) clearField(k);
    },
    /** Shows each message next to its field; returns the messages with no field. */
    showErrors(details, {focus = true} = {}) {
      const rest = [];
      let first = null;
      let firstIp = null;
      for (const d of details) {
        const base = (d.field || '').replace(/\[\d+\]$/, '');
        const el = errors[base];
        if (!el) {
          rest.push(detailSentence(d));
          continue;
        }
        if (base === 'allowed_ips') {
          // One line per wrong entry, each naming its line of the text area.
          const entries = d.entries || ipsSent;
          el.append(h('span', {class: 'error-line'}, ipSentence(d, entries)));
          const m = /\[(\d+)\]$/.exec(d.field);
          if (m && !firstIp) firstIp = entries[Number(m[1])] || null;
        } else {
          el.textContent = el.textContent ? `${el.textContent} ${detailSentence(d)}` : detailSentence(d);
        }
        el.hidden = false;
        for (const t of invalidTarget[base]) t.setAttribute('aria-invalid', 'true');
        if (base === 'permission') permSet.classList.add('invalid');
        if (base === 'scopes') { scopesSet.classList.add('invalid'); show(scopesSet, true); }
        if (base.startsWith('rate_limit')) { rateSet.classList.add('invalid'); show(rateInputs, rateOn.checked); }
        if (!first) first = base;
      }
      if (first && focus) {
        focusTarget[first]().focus();
        // The first wrong entry is selected: typing replaces it.
        if (first === 'allowed_ips' && firstIp) ips.setSelectionRange(firstIp.start, firstIp.end);
      }
      return rest;
    },
    /** Client-side checks, the same rules as the server (api.md §3.2). */
    check() {
      const v = form.values();
      const out = [];
      const n = v.name.trim();
      if (!n) out.push({field: 'name', message: 'Enter a name for the key.'});
      else if ([...n].length > 100) out.push({field: 'name', message: 'Use at most 100 characters.'});
      if (!v.permission) out.push({field: 'permission', message: 'Choose a permission set.'});
      else if (v.permission === 'restricted' && v.scopes.length === 0) {
        out.push({field: 'scopes', message: 'Choose Read or Write for at least one resource.'});
      }
      const rl = v.rate_limit;
      if (rl) {
        if (!(rl.requests >= 1 && rl.requests <= RATE_MAX_REQUESTS)) {
          out.push({field: 'rate_limit.requests',
            message: `Enter a whole number of requests from 1 to ${countFmt.format(RATE_MAX_REQUESTS)}.`});
        }
        if (!(rl.per_seconds >= 1)) {
          out.push({field: 'rate_limit.per_seconds', message: 'Enter the time window as a whole number, 1 or more.'});
        } else if (rl.per_seconds > RATE_MAX_SECONDS) {
          out.push({field: 'rate_limit.per_seconds', message: 'The time window can be at most 1 day.'});
        }
      }
      out.push(...ipChecks(ips.value));
      return out;
    },
    focusFirst() { name.focus(); },
  };
  return form;
}

/** Runs a save: disables the button, maps API errors to the form, keeps what the user typed. */
async function runSave(form, banner, button, busyLabel, fn) {
  form.clearErrors();
  showBanner(banner, '');
  const problems = form.check();
  if (problems.length) {
    form.showErrors(problems);
    showBanner(banner, 'Please correct the fields marked below.');
    return false;
  }
  const label = button.textContent;
  button.disabled = true;
  button.textContent = busyLabel;
  try {
    await fn();
    return true;
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    const rest = form.showErrors(e.details);
    const fielded = e.details.length > rest.length;
    showBanner(banner, rest.length ? `${e.message} ${rest.join(' ')}`
      : fielded ? 'Please correct the fields marked below.' : e.message);
    if (!fielded) banner.focus();
    return false;
  } finally {
    button.disabled = false;
    button.textContent = label;
  }
}

// ---------------------------------------------------------------------------------------------
// the table

/** The status badge; a key revoked by a leak report says so: "Revoked — reported leaked". */
function badge(status, k) {
  const leaked = status === 'revoked' && k && k.revoked_by === LEAK_REPORTER;
  return h('span', {class: `badge badge-${status}`}, leaked ? 'Revoked — reported leaked' : STATUS_LABEL[status] || status);
}

/** "Limited" and "IP-restricted" markers: words (not colour), the details on hover and for screen readers. */
function limitTags(k) {
  const tags = [];
  const tag = (cls, label, detail) => h('span', {class: `tag ${cls}`, title: detail},
    label, h('span', {class: 'visually-hidden'}, ` (${detail})`));
  if (k.rate_limit) tags.push(tag('tag-limited', 'Limited', `Rate limit: ${rateText(k.rate_limit)}`));
  const ips = k.allowed_ips || [];
  if (ips.length) {
    const shown = ips.length > 5 ? `${ips.slice(0, 5).join(', ')} and ${ips.length - 5} more` : ips.join(', ');
    tags.push(tag('tag-ip', 'IP-restricted', `Allowed from ${shown}`));
  }
  return tags.length ? h('span', {class: 'tags'}, tags) : null;
}

function permissionCell(k) {
  return h('div', {}, h('span', {class: 'perm'}, PERMISSION_LABEL[k.permission] || k.permission),
    k.permission === 'restricted' ? h('span', {class: 'scopes-sum'}, scopeSummary(k.scopes)) : null,
    limitTags(k));
}

/** Whole days since an active key's last use (or its creation, if never used): what ?unused_for_days counts. */
function unusedDays(k, now = Date.now()) {
  return Math.floor((now - Date.parse(k.last_used_at || k.created_at)) / DAY_MS);
}

/** An active key unused for more than 90 days: a candidate for cleanup. */
function isStale(k, now = Date.now()) {
  return k.status === 'active' && now - Date.parse(k.last_used_at || k.created_at) > STALE_DAYS * DAY_MS;
}

/** "Not used for 4 months", "Not used for 1 year". */
function staleText(days) {
  if (days >= 365) {
    const y = Math.floor(days / 365);
    return `Not used for ${y} ${y === 1 ? 'year' : 'years'}`;
  }
  return `Not used for ${Math.floor(days / 30)} months`;
}

function lastUsedEl(k) {
  const used = k.last_used_at ? timeEl(k.last_used_at, relTime(k.last_used_at), 'rel') : h('span', {class: 'never'}, 'Never');
  if (!isStale(k)) return used;
  return h('div', {}, used, h('span', {class: 'row-note row-note-warn stale-note'}, staleText(unusedDays(k))));
}

/** The badge, and for a rotated key what became of it: "Rotated — works until <date>". */
function statusCell(k) {
  let note = null;
  if (k.rotated_to) {
    note = k.status === 'active' && k.expires_at
      ? ['Rotated — works until ', timeEl(k.expires_at, fmtDateTime(k.expires_at))]
      : 'Rotated';  // revoked at once (no grace period), or the grace period is over
  }
  return h('div', {}, badge(k.status, k), note ? h('span', {class: 'row-note rotated-note'}, note) : null);
}

/** The expiry date, and "Expires in N days" when an active key stops within 7 days. */
function expiresCell(k) {
  if (!k.expires_at) return h('span', {class: 'never'}, 'Never');
  return h('div', {}, timeEl(k.expires_at, fmtDateTime(k.expires_at)),
    expiresSoon(k) ? h('span', {class: 'row-note row-note-warn expiry-note', dataset: {expires: k.expires_at}},
      expiresInText(k.expires_at)) : null);
}

function rowFor(k) {
  const btn = h('button', {type: 'button', class: 'menu-btn', 'aria-haspopup': 'menu',
    'aria-expanded': 'false', 'aria-label': `Actions for ${k.name}`,
    // Names repeat (a rotated key and its successor share one): the hint tells the buttons apart.
    'aria-describedby': `hint-${k.id}`,
    onclick: (ev) => toggleMenu(ev.currentTarget, k.id),
    onkeydown: (ev) => {
      if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        ev.preventDefault();
        openMenu(ev.currentTarget, k.id, ev.key === 'ArrowUp' ? 'last' : 'first');
      }
    }}, h('span', {'aria-hidden': 'true'}, '⋯'));
  return h('tr', {dataset: {keyId: k.id}},
    h('th', {scope: 'row', 'data-label': 'Name', class: 'name'}, k.name),
    h('td', {'data-label': 'Key'}, h('code', {class: 'hint-code', id: `hint-${k.id}`}, k.hint)),
    h('td', {'data-label': 'Permissions'}, permissionCell(k)),
    h('td', {'data-label': 'Status'}, statusCell(k)),
    h('td', {'data-label': 'Created'}, timeEl(k.created_at, dateFmt.format(new Date(k.created_at)))),
    h('td', {'data-label': 'Expires'}, expiresCell(k)),
    h('td', {'data-label': 'Last used', class: 'last-used'}, lastUsedEl(k)),
    h('td', {class: 'actions'}, btn));
}

function rowOf(id) {
  return $('keys-body').querySelector(`tr[data-key-id="${CSS.escape(id)}"]`);
}

function putRow(k) {
  state.keys.set(k.id, k);
  const old = rowOf(k.id);
  const row = rowFor(k);
  if (old) {
    const hadFocus = old.contains(document.activeElement);
    old.replaceWith(row);
    if (hadFocus) row.querySelector('.menu-btn').focus();
  } else {
    $('keys-body').append(row);
  }
  return row;
}

function updateListMeta(hasMore) {
  const n = state.keys.size;
  const filtered = Boolean($('filter-q').value.trim() || $('filter-status').value || unusedFilterOn());
  show($('keys-table'), n > 0);
  const empty = $('keys-empty');
  empty.textContent = filtered ? 'No keys match this search and filter.'
    : 'No API keys yet. Create one to let an integration call the Looped API.';
  show(empty, n === 0);
  $('keys-count').textContent = n === 0 ? '' : `Showing ${n} ${n === 1 ? 'key' : 'keys'}.`;
  show($('load-more'), Boolean(hasMore));
}

function unusedFilterOn() {
  return $('filter-unused').getAttribute('aria-pressed') === 'true';
}

function setUnusedFilter(on) {
  $('filter-unused').setAttribute('aria-pressed', on ? 'true' : 'false');
}

/** Loads the first page (append=false) or the next one, with the current filters. */
async function loadKeys(append = false) {
  if (state.listAbort) state.listAbort.abort();
  const ctrl = new AbortController();
  state.listAbort = ctrl;
  const params = new URLSearchParams({limit: String(PAGE_SIZE)});
  const st = $('filter-status').value;
  const q = $('filter-q').value.trim();
  if (st) params.set('status', st);
  if (q) params.set('q', q.slice(0, 100));
  if (unusedFilterOn()) params.set('unused_for_days', String(STALE_DAYS));
  if (append && state.cursor) params.set('cursor', state.cursor);
  const more = $('load-more');
  more.disabled = true;
  $('keys').setAttribute('aria-busy', 'true');
  try {
    const page = await api('GET', `${teamPath()}?${params}`, undefined, ctrl.signal);
    if (ctrl.signal.aborted) return;
    showBanner($('list-error'), '');
    let focusedKey = null;
    if (!append) {
      const tr = document.activeElement && document.activeElement.closest('#keys-body tr');
      focusedKey = tr ? tr.dataset.keyId : null;
      closeMenu(false);
      state.keys.clear();
      $('keys-body').replaceChildren();
    }
    for (const k of page.data) putRow(k);
    // A reload (after a rotation, say) keeps the focus on the same key's ⋯ button, not the body.
    if (focusedKey && rowOf(focusedKey)) rowOf(focusedKey).querySelector('.menu-btn').focus();
    state.cursor = page.next_cursor;
    updateListMeta(page.has_more && page.next_cursor);
  } catch (e) {
    if (e.name === 'AbortError') return;
    if (!(e instanceof ApiError)) throw e;
    const retry = h('button', {type: 'button', class: 'btn btn-small', onclick: () => loadKeys(append)}, 'Try again');
    showBanner($('list-error'), h('span', {}, `The keys could not be loaded: ${e.message} `, retry));
  } finally {
    if (state.listAbort === ctrl) {
      state.listAbort = null;
      more.disabled = false;
      $('keys').removeAttribute('aria-busy');
    }
  }
}

function refreshRelativeTimes() {
  for (const t of document.querySelectorAll('time.rel')) t.textContent = relTime(t.getAttribute('datetime'));
  for (const n of document.querySelectorAll('.expiry-note')) n.textContent = expiresInText(n.dataset.expires);
}

// ---------------------------------------------------------------------------------------------
// the row menu (a menu button: Enter, Space or arrows open it; arrows move; Escape closes)

function menuItems() {
  return [...$('row-menu').querySelectorAll('[role=menuitem]')].filter((b) => !b.closest('li').hidden);
}

function openMenu(button, keyId, focus = 'first') {
  const menu = $('row-menu');
  const k = state.keys.get(keyId);
  if (!k) return;
  closeMenu(false);
  state.menuKey = keyId;
  state.menuButton = button;
  menu.querySelector('[data-action=revoke]').closest('li').hidden = k.status === 'revoked';
  // The API refuses to rotate a revoked, an already rotated or an expired key (api.md §6.3).
  menu.querySelector('[data-action=rotate]').closest('li').hidden = k.status !== 'active' || Boolean(k.rotated_to);
  menu.setAttribute('aria-label', `Actions for ${k.name}`);
  button.setAttribute('aria-expanded', 'true');
  button.setAttribute('aria-controls', 'row-menu');
  show(menu, true);
  const r = button.getBoundingClientRect();
  const w = menu.offsetWidth;
  const left = Math.max(8, Math.min(r.right - w, document.documentElement.clientWidth - w - 8));
  let top = r.bottom + 4;
  if (top + menu.offsetHeight > window.innerHeight && r.top - menu.offsetHeight - 4 > 0) {
    top = r.top - menu.offsetHeight - 4;
  }
  menu.style.left = `${left + window.scrollX}px`;
  menu.style.top = `${top + window.scrollY}px`;
  const items = menuItems();
  (focus === 'last' ? items[items.length - 1] : items[0]).focus();
}

function closeMenu(restoreFocus = true) {
  const menu = $('row-menu');
  if (menu.hidden) return;
  show(menu, false);
  if (state.menuButton) {
    state.menuButton.setAttribute('aria-expanded', 'false');
    state.menuButton.removeAttribute('aria-controls');
    if (restoreFocus) state.menuButton.focus();
  }
}

function toggleMenu(button, keyId) {
  if (!$('row-menu').hidden && state.menuButton === button) closeMenu();
  else openMenu(button, keyId);
}

function setupMenu() {
  const menu = $('row-menu');
  menu.addEventListener('keydown', (ev) => {
    const items = menuItems();
    const i = items.indexOf(document.activeElement);
    if (ev.key === 'ArrowDown') items[(i + 1) % items.length].focus();
    else if (ev.key === 'ArrowUp') items[(i - 1 + items.length) % items.length].focus();
    else if (ev.key === 'Home') items[0].focus();
    else if (ev.key === 'End') items[items.length - 1].focus();
    else if (ev.key === 'Escape') closeMenu();
    else if (ev.key === 'Tab') { closeMenu(false); return; }
    else return;
    ev.preventDefault();
  });
  menu.addEventListener('click', (ev) => {
    const item = ev.target.closest('[role=menuitem]');
    if (!item) return;
    const key = state.keys.get(state.menuKey);
    const button = state.menuButton;
    closeMenu(false);
    if (!key) return;
    if (item.dataset.action === 'details') openDetails(key, button);
    else if (item.dataset.action === 'rotate') openRotate(key, button);
    else if (item.dataset.action === 'revoke') confirmRevoke(key, button);
    else if (item.dataset.action === 'delete') confirmDelete(key, button);
  });
  document.addEventListener('pointerdown', (ev) => {
    if (!menu.hidden && !menu.contains(ev.target) && ev.target.closest('.menu-btn') !== state.menuButton) {
      closeMenu(false);
    }
  });
  window.addEventListener('resize', () => closeMenu(false));
}

// ---------------------------------------------------------------------------------------------
// dialogs

function setupDialog(dialog, onClose) {
  for (const b of dialog.querySelectorAll('[data-close]')) b.addEventListener('click', () => dialog.close());
  if (onClose) dialog.addEventListener('close', onClose);
}

function focusSoon(el) {
  if (el && el.isConnected) window.setTimeout(() => el.focus(), 0);
}

/**
 * Where the focus goes back to when a dialog closes: `el`, or, when its row was redrawn meanwhile
 * (the details' fresh copy, a reload), the same key's ⋯ button in the new row (a detached row keeps
 * its data-key-id); else Create API Key.
 */
function returnTarget(el) {
  if (el && el.isConnected) return el;
  const tr = el && el.closest('tr[data-key-id]');
  const row = tr && rowOf(tr.dataset.keyId);
  return (row && row.querySelector('.menu-btn')) || $('create-open');
}

// create ---------------------------------------------------------------------------------------

let createForm;

async function ensureCatalog() {
  if (state.catalog) return;
  try {
    const res = await api('GET', '/v1/scopes');
    const apps = new Map();
    for (const s of res.data) {
      if (!apps.has(s.app)) apps.set(s.app, new Map());
      const resources = apps.get(s.app);
      if (!resources.has(s.resource)) {
        resources.set(s.resource, {name: s.resource, title: resourceTitle(s.resource), read: '', write: ''});
      }
      resources.get(s.resource)[s.access] = s.description;
    }
    state.catalog = [...apps].map(([app, resources]) => ({app, resources: [...resources.values()]}));
    state.catalogError = null;
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    state.catalogError = e.message;
  }
}

async function openCreate() {
  await ensureCatalog();
  createForm.rebuildScopes();
  createForm.fill(null);
  showBanner($('create-error'), '');
  $('create-dialog').showModal();
  createForm.focusFirst();
}

async function submitCreate(ev) {
  ev.preventDefault();
  const team = state.team;
  let created = null;
  const ok = await runSave(createForm, $('create-error'), $('create-submit'), 'Creating…', async () => {
    const v = createForm.values();
    const body = {name: v.name.trim(), permission: v.permission};
    if (v.permission === 'restricted') body.scopes = v.scopes;
    if (v.expires) body.expires_at = endOfDay(v.expires);
    if (v.rate_limit) body.rate_limit = v.rate_limit;
    if (v.allowed_ips.length) body.allowed_ips = v.allowed_ips;
    created = await api('POST', teamPath(), body);
  });
  if (!ok || !created) return;
  $('create-dialog').close();
  showSecret(created);
  if (state.team === team) {
    loadKeys(false);
    loadExpiring();
  }
}

// the one-time secret ---------------------------------------------------------------------------

/**
 * The one-time screen, for a created or a rotated key. `note` (optional) says more, such as until
 * when the old key works; `returnTo` (optional) gives the element to focus once it is closed.
 */
function showSecret(created, {note = '', returnTo = null} = {}) {
  $('secret-name').textContent = created.name;
  $('secret-value').textContent = created.key;
  $('secret-copied').textContent = '';
  $('secret-note').replaceChildren(...[note].flat());
  show($('secret-note'), Boolean(note));
  state.secretReturn = returnTo;
  $('secret-dialog').showModal();
  $('secret-copy').focus();
}

function selectSecret() {
  const range = document.createRange();
  range.selectNodeContents($('secret-value'));
  const sel = window.getSelection();
  sel.removeAllRanges();
  sel.addRange(range);
}

async function copySecret() {
  const text = $('secret-value').textContent;
  const out = $('secret-copied');
  try {
    if (!navigator.clipboard || !window.isSecureContext) throw new Error('no clipboard');
    await navigator.clipboard.writeText(text);
    out.textContent = 'Copied to the clipboard.';
    return;
  } catch (e) {
    // Older browsers and plain-HTTP pages: select the text and try the legacy command.
  }
  selectSecret();
  let copied = false;
  try {
    copied = document.execCommand('copy');
  } catch (e) {
    copied = false;
  }
  out.textContent = copied ? 'Copied to the clipboard.'
    : 'The key is selected: press Ctrl+C (⌘C on a Mac) to copy it.';
}

function closeSecret() {
  // The raw key leaves the page: nothing keeps it once the screen is closed.
  $('secret-value').textContent = '';
  $('secret-name').textContent = '';
  $('secret-copied').textContent = '';
  $('secret-note').replaceChildren();
  window.getSelection().removeAllRanges();
  const back = state.secretReturn && state.secretReturn();
  state.secretReturn = null;
  focusSoon(returnTarget(back));
}

// details and edit --------------------------------------------------------------------------------

let editForm;

function fact(label, ...value) {
  return [h('dt', {}, label), h('dd', {}, ...value)];
}

function renderFacts(k) {
  const by = (who) => (who ? ` by ${who}` : '');
  const facts = [
    ...fact('Name', k.name),
    ...fact('Status', badge(k.status, k)),
    ...fact('Key', h('code', {}, k.hint)),
    ...fact('ID', h('code', {}, k.id)),
    ...fact('Permission set', PERMISSION_LABEL[k.permission] || k.permission),
  ];
  if (k.permission === 'restricted') {
    facts.push(...fact('Scopes', h('ul', {class: 'scope-list'},
      k.scopes.map((s) => h('li', {}, h('code', {}, s))))));
  }
  const ipsList = k.allowed_ips || [];
  facts.push(
    ...fact('Rate limit', rateText(k.rate_limit)),
    ...fact('Allowed IP addresses', ipsList.length
      ? h('ul', {class: 'ip-list'}, ipsList.map((x) => h('li', {}, h('code', {}, x))))
      : 'Anywhere'),
    ...fact('Expires', k.expires_at ? timeEl(k.expires_at, fmtDateTime(k.expires_at)) : 'Never',
      k.rotated_to && k.expires_at && !k.revoked_at ? ' (the end of its grace period)' : '',
      expiresSoon(k) ? h('span', {class: 'row-note row-note-warn'}, expiresInText(k.expires_at)) : null),
    ...fact('Created', timeEl(k.created_at, fmtDateTime(k.created_at)), by(k.created_by)),
    ...fact('Last changed', timeEl(k.updated_at, fmtDateTime(k.updated_at))),
    ...fact('Last used', k.last_used_at
      ? [timeEl(k.last_used_at, relTime(k.last_used_at), 'rel'), k.last_used_ip ? ` from ${k.last_used_ip}` : '']
      : 'Never'),
  );
  if (k.revoked_at && k.revoked_by === LEAK_REPORTER) {
    facts.push(...fact('Revoked', timeEl(k.revoked_at, fmtDateTime(k.revoked_at)), ' — reported leaked'),
      ...fact('Found at', leakSourceEl(k)));
  } else if (k.revoked_at) {
    facts.push(...fact('Revoked', timeEl(k.revoked_at, fmtDateTime(k.revoked_at)), by(k.revoked_by)));
  }
  if (k.rotated_to) facts.push(...fact('Rotated to', relatedKeyEl(k.rotated_to)));
  if (k.rotated_from) facts.push(...fact('Rotated from', relatedKeyEl(k.rotated_from)));
  $('details-facts').replaceChildren(...facts);
  $('details-title').textContent = k.name;
  const revoked = k.status === 'revoked';
  show($('details-edit'), !revoked);
  show($('edit-note'), revoked);
  $('edit-note').textContent = revoked ? 'A revoked key cannot be edited or reactivated: create a new key instead.' : '';
}

/** The other key of a rotation: a button that opens its details ("Zapier production (looped_Ab3x…9fQz)"). */
function relatedKeyEl(id) {
  const known = state.related.has(id) ? state.related.get(id) : state.keys.get(id);
  if (known === null) return h('span', {class: 'muted'}, `A deleted key (${id})`);
  if (known === undefined) loadRelated(id);
  const text = known ? `${known.name} (${known.hint})` : id;
  return h('button', {type: 'button', class: 'link-btn related-key', dataset: {keyId: id},
    onclick: () => openRelated(id)}, text);
}

const relatedAsked = new Map();  // key id -> the promise of its loadRelated, while in flight

/** Fetches a key linked by rotation (once at a time), then shows its name and hint in the details that name it. */
function loadRelated(id) {
  if (state.related.has(id) && state.related.get(id) !== undefined) return Promise.resolve(state.related.get(id));
  if (!relatedAsked.has(id)) {
    state.related.set(id, undefined);  // asked: renderFacts may run again meanwhile
    relatedAsked.set(id, fetchRelated(id).finally(() => relatedAsked.delete(id)));
  }
  return relatedAsked.get(id);
}

async function fetchRelated(id) {
  try {
    const k = await api('GET', teamPath(`/${encodeURIComponent(id)}`));
    state.related.set(id, k);
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    if (e.status !== 404) {  // the button keeps the id and asks again when clicked
      state.related.delete(id);
      return undefined;
    }
    state.related.set(id, null);
  }
  if (!relatedAsked.has(id)) return state.related.get(id);  // the team changed meanwhile
  const shown = state.detailsKey;
  if (shown && (shown.rotated_to === id || shown.rotated_from === id) && $('edit-form').hidden) {
    const hadFocus = document.activeElement && document.activeElement.dataset
      && document.activeElement.dataset.keyId === id;
    renderFacts(shown);
    if (hadFocus) $('details-facts').querySelector(`[data-key-id="${CSS.escape(id)}"]`)?.focus();
  }
  return state.related.get(id);
}

/** Opens the details of the other key of a rotation in the same dialog. */
async function openRelated(id) {
  let k = state.related.get(id) || state.keys.get(id);
  if (!k) k = await loadRelated(id);
  if (!$('details-dialog').open) return;
  if (!k) {
    if (state.detailsKey) renderFacts(state.detailsKey);
    showBanner($('details-error'), k === null ? 'That key no longer exists: it was deleted.'
      : 'That key could not be loaded. Please try again.');
    return;
  }
  openDetails(k, state.detailsReturn);
}

/** Where a secret scanner found a leaked key, from the revoke's audit record (fetched once per key). */
const leakSources = new Map();  // key id -> promise of the source ('' when the report gave none)

function leakSourceEl(k) {
  const el = h('span', {class: 'leak-source'}, 'Loading…');
  if (!leakSources.has(k.id)) {
    const params = new URLSearchParams({key_id: k.id, action: 'api_key.revoked', limit: '1'});
    leakSources.set(k.id, api('GET', `/v1/teams/${encodeURIComponent(state.team.id)}/audit?${params}`)
      .then((res) => (res.data[0] && res.data[0].source) || ''));
  }
  leakSources.get(k.id).then((src) => {
    // Shown as text, not a link: the URL comes from whoever sent the report.
    el.replaceChildren(src ? h('code', {class: 'source-url'}, src) : 'Not given by the report');
  }, (e) => {
    leakSources.delete(k.id);
    el.replaceChildren(`Could not be loaded: ${e instanceof ApiError ? e.message : 'error'}`);
  });
  return el;
}

const ACTION_LABEL = {
  'api.request': 'API request',
  'api_key.created': 'Created',
  'api_key.updated': 'Edited',
  'api_key.revoked': 'Revoked',
  'api_key.rotated': 'Rotated',
  'api_key.deleted': 'Deleted',
};

function renderActivity(records) {
  const box = $('activity');
  if (!records.length) {
    box.replaceChildren(h('p', {class: 'muted'}, 'No activity yet.'));
    return;
  }
  const rows = records.map((r) => {
    let what = ACTION_LABEL[r.action] || r.action;
    if (r.actor && r.actor.type === 'user') what += ` by ${r.actor.id}`;
    if (r.action === 'api_key.revoked' && r.reason === 'leaked') what = 'Revoked — reported leaked';
    if (r.action === 'api_key.updated' && r.changes) what += ` (${Object.keys(r.changes).join(', ')})`;
    if (r.action === 'api_key.rotated' && r.rotation) what += ` (grace period: ${graceText(r.rotation.grace_period_hours)})`;
    const req = r.action === 'api.request' ? `${r.method || ''} ${r.path || ''}`.trim() : '';
    return h('tr', {},
      h('td', {'data-label': 'When'}, timeEl(r.at, relTime(r.at), 'rel')),
      h('td', {'data-label': 'Event'}, what, req ? h('code', {class: 'req'}, req) : null),
      h('td', {'data-label': 'Result'}, r.status ? String(r.status) : ''),
      h('td', {'data-label': 'From'}, r.ip || ''));
  });
  box.replaceChildren(h('table', {class: 'activity'},
    h('caption', {class: 'visually-hidden'}, 'The 20 most recent events of this key'),
    h('thead', {}, h('tr', {},
      h('th', {scope: 'col'}, 'When'), h('th', {scope: 'col'}, 'Event'),
      h('th', {scope: 'col'}, 'Result'), h('th', {scope: 'col'}, 'From'))),
    h('tbody', {}, rows)));
}

async function loadActivity(k) {
  $('activity').replaceChildren(h('p', {class: 'muted'}, 'Loading activity…'));
  try {
    const params = new URLSearchParams({key_id: k.id, limit: '20'});
    const res = await api('GET', `/v1/teams/${encodeURIComponent(state.team.id)}/audit?${params}`);
    if (state.detailsKey && state.detailsKey.id === k.id) renderActivity(res.data);
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    $('activity').replaceChildren(h('p', {class: 'field-error'}, `The activity could not be loaded: ${e.message}`));
  }
}

/** The first instant (UTC) of the chart's oldest day: USAGE_DAYS daily buckets end with today's. */
function usageSince(now = new Date()) {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) - (USAGE_DAYS - 1) * DAY_MS);
}

const usageDayFmt = new Intl.DateTimeFormat(undefined, {weekday: 'short', day: 'numeric', timeZone: 'UTC'});
const usageDateFmt = new Intl.DateTimeFormat(undefined, {dateStyle: 'medium', timeZone: 'UTC'});

function share(n, total) {
  if (!total) return '0%';
  const p = (100 * n) / total;
  return p > 0 && p < 1 ? '<1%' : `${Math.round(p)}%`;
}

/** The chart (SVG, for the eye), its summary (the 4xx/429/5xx shares) and a table with every number
 * (for screen readers; the SVG is hidden from them). */
function renderUsage(res) {
  const days = res.data;
  const total = days.reduce((n, d) => n + d.requests, 0);
  const sum = (c) => days.reduce((n, d) => n + (d.by_status[c] || 0), 0);
  const summary = total === 0 ? h('p', {class: 'muted usage-summary'}, `No requests in the last ${USAGE_DAYS} days.`)
    : h('p', {class: 'usage-summary'},
      h('strong', {}, `${countFmt.format(total)} ${total === 1 ? 'request' : 'requests'}`), ` in ${USAGE_DAYS} days: `,
      ['4xx', '429', '5xx'].map((c, i) => [i ? ', ' : '',
        h('span', {class: `share share-${c}`}, `${share(sum(c), total)} ${c}`)]));
  const W = 560, H = 150, top = 8, base = H - 24, slot = W / days.length, bar = Math.min(44, slot * 0.6);
  const max = Math.max(1, ...days.map((d) => d.requests));
  const bars = days.map((d, i) => {
    const x = i * slot + (slot - bar) / 2;
    let y = base;
    const segs = USAGE_CLASSES.map((c) => {
      const n = d.by_status[c.key] || 0;
      const hgt = (n / max) * (base - top);
      y -= hgt;
      return n ? svg('rect', {class: `seg seg-${c.key}`, x: x.toFixed(1), y: y.toFixed(1), width: bar.toFixed(1),
        height: Math.max(hgt, 1).toFixed(1)}) : null;
    });
    const label = usageDayFmt.format(new Date(d.start));
    return svg('g', {},
      svg('title', {}, `${usageDateFmt.format(new Date(d.start))}: ${d.requests} requests`),
      segs,
      svg('text', {class: 'day', x: (i * slot + slot / 2).toFixed(1), y: H - 6, 'text-anchor': 'middle'}, label),
      d.requests ? svg('text', {class: 'count', x: (i * slot + slot / 2).toFixed(1), y: Math.max(y - 3, 10).toFixed(1),
        'text-anchor': 'middle'}, countFmt.format(d.requests)) : null);
  });
  const chart = svg('svg', {class: 'usage-chart', viewBox: `0 0 ${W} ${H}`, 'aria-hidden': 'true', focusable: 'false'},
    svg('line', {class: 'axis', x1: 0, y1: base + 0.5, x2: W, y2: base + 0.5}), bars);
  const legend = h('ul', {class: 'usage-legend', 'aria-hidden': 'true'},
    USAGE_CLASSES.map((c) => h('li', {}, h('span', {class: `swatch seg-${c.key}`}), c.label)));
  const table = h('table', {class: 'usage-table visually-hidden'},
    h('caption', {}, `Requests per day (UTC), the last ${USAGE_DAYS} days`),
    h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Day'), h('th', {scope: 'col'}, 'Requests'),
      USAGE_CLASSES.map((c) => h('th', {scope: 'col'}, c.label)))),
    h('tbody', {}, days.map((d) => h('tr', {},
      h('th', {scope: 'row'}, usageDateFmt.format(new Date(d.start))), h('td', {}, String(d.requests)),
      USAGE_CLASSES.map((c) => h('td', {}, String(d.by_status[c.key] || 0)))))));
  $('usage').replaceChildren(summary, chart, legend, table);
}

async function loadUsage(k) {
  $('usage').replaceChildren(h('p', {class: 'muted'}, 'Loading usage…'));
  try {
    const params = new URLSearchParams({interval: 'day', since: usageSince().toISOString()});
    const res = await api('GET', teamPath(`/${encodeURIComponent(k.id)}/usage?${params}`));
    if (state.detailsKey && state.detailsKey.id === k.id) renderUsage(res);
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    if (state.detailsKey && state.detailsKey.id === k.id) {
      $('usage').replaceChildren(h('p', {class: 'field-error'}, `The usage could not be loaded: ${e.message}`));
    }
  }
}

function setDetailsMode(editing) {
  show($('details-view'), !editing);
  show($('edit-form'), editing);
}

async function openDetails(k, returnTo) {
  state.detailsKey = k;
  state.detailsReturn = returnTo;
  setDetailsMode(false);
  showBanner($('details-error'), '');
  renderFacts(k);
  if (!$('details-dialog').open) $('details-dialog').showModal();
  $('details-title').setAttribute('tabindex', '-1');
  $('details-title').focus();
  loadUsage(k);
  loadActivity(k);
  try {
    const fresh = await api('GET', teamPath(`/${encodeURIComponent(k.id)}`));
    if (state.detailsKey && state.detailsKey.id === k.id) {
      state.detailsKey = fresh;
      if ($('edit-form').hidden) renderFacts(fresh);
      if (state.keys.has(fresh.id)) putRow(fresh);
    }
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    if (e.status === 404) {
      removeRow(k.id);
      showBanner($('details-error'), 'This key no longer exists: it was deleted.');
      show($('details-edit'), false);
    } else {
      showBanner($('details-error'), `The latest details could not be loaded: ${e.message}`);
    }
  }
}

async function startEdit() {
  await ensureCatalog();
  editForm.rebuildScopes();
  editForm.fill(state.detailsKey);
  $('details-title').textContent = `Edit “${state.detailsKey.name}”`;
  showBanner($('edit-error'), '');
  setDetailsMode(true);
  editForm.focusFirst();
}

function cancelEdit() {
  setDetailsMode(false);
  renderFacts(state.detailsKey);
  $('details-edit').focus();
}

async function submitEdit(ev) {
  ev.preventDefault();
  const k = state.detailsKey;
  let updated = null;
  const ok = await runSave(editForm, $('edit-error'), $('edit-submit'), 'Saving…', async () => {
    const v = editForm.values();
    const body = {};
    if (v.name.trim() !== k.name) body.name = v.name.trim();
    if (v.permission !== k.permission) body.permission = v.permission;
    if (v.permission === 'restricted') {
      const same = v.scopes.length === k.scopes.length && v.scopes.every((s) => k.scopes.includes(s));
      if (!same || v.permission !== k.permission) body.scopes = v.scopes;
    }
    const before = k.expires_at ? localDate(k.expires_at) : '';
    if (v.expires !== before) body.expires_at = v.expires ? endOfDay(v.expires) : null;
    const rl = k.rate_limit || null;
    const sameRate = rl && v.rate_limit ? rl.requests === v.rate_limit.requests && rl.per_seconds === v.rate_limit.per_seconds
      : !rl && !v.rate_limit;
    if (!sameRate) body.rate_limit = v.rate_limit;  // null clears it
    const had = k.allowed_ips || [];
    const sameIps = had.length === v.allowed_ips.length && had.every((x, i) => x === v.allowed_ips[i]);
    if (!sameIps) body.allowed_ips = v.allowed_ips;  // [] allows anywhere again
    updated = Object.keys(body).length ? await api('PATCH', teamPath(`/${encodeURIComponent(k.id)}`), body) : k;
  });
  if (!ok || !updated) return;
  state.detailsKey = updated;
  if (state.keys.has(updated.id)) putRow(updated);
  setDetailsMode(false);
  renderFacts(updated);
  loadActivity(updated);
  announce(updated === k ? 'Nothing was changed.' : `Changes to “${updated.name}” saved.`);
  if (updated !== k) loadExpiring();
  $('details-edit').focus();
}

function closeDetails() {
  setDetailsMode(false);
  state.detailsKey = null;
  const back = state.detailsReturn;
  state.detailsReturn = null;
  focusSoon(returnTarget(back));
}

// rotate ---------------------------------------------------------------------------------------------

const graceRadios = {};  // "0", "1", …, "custom" -> radio

/** "none (revoked at once)", "1 hour", "36 hours", "7 days". */
function graceText(hours) {
  if (hours === 0) return 'none (revoked at once)';
  if (hours % 24 === 0) return hours === 24 ? '24 hours' : `${hours / 24} days`;
  return hours === 1 ? '1 hour' : `${hours} hours`;
}

function setupRotate() {
  const choice = (value, label, help) => {
    const id = `rotate-grace-${value}`;
    graceRadios[value] = h('input', {type: 'radio', name: 'rotate-grace', id, value,
      'aria-describedby': help ? `${id}-help` : null});
    return h('div', {class: 'choice'}, graceRadios[value],
      h('div', {class: 'choice-text'}, h('label', {for: id, class: 'choice-title'}, label),
        help ? h('span', {class: 'choice-help', id: `${id}-help`}, help) : null));
  };
  $('rotate-choices').replaceChildren(...GRACE_CHOICES.map((c) => choice(String(c.hours), c.label, c.help)),
    choice('custom', 'Number of hours'));
  $('rotate-grace').addEventListener('change', syncRotate);
  $('rotate-hours').addEventListener('input', () => {
    clearRotateFieldError();
    syncRotate();
  });
  $('rotate-form').addEventListener('submit', submitRotate);
  setupDialog($('rotate-dialog'), () => {
    // Closed without rotating (Cancel, Escape): back to the row's ⋯ button, or the same key's
    // button when the table was reloaded meanwhile (after a 409, say).
    const k = state.rotateKey;
    const back = k ? state.rotateReturn : null;
    state.rotateKey = null;
    state.rotateReturn = null;
    if (!k) return;
    const row = rowOf(k.id);
    focusSoon(back && back.isConnected ? back : (row && row.querySelector('.menu-btn')) || returnTarget(back));
  });
}

/** The grace period chosen: {hours} or {problem} (a sentence for the hours field). */
function graceChosen() {
  const checked = Object.values(graceRadios).find((r) => r.checked);
  if (!checked) return {problem: 'Choose how long the old key keeps working.'};
  if (checked.value !== 'custom') return {hours: Number(checked.value)};
  const v = $('rotate-hours').value.trim();
  // The range (0–720) is the server's to say: its message lands on this field as well.
  if (!/^\d{1,6}$/.test(v)) return {problem: 'Enter a whole number of hours from 0 to 720.'};
  return {hours: Number(v)};
}

/** Shows the hours field for "Number of hours" and says until when the old key would work. */
function syncRotate() {
  const k = state.rotateKey;
  show($('rotate-hours-field'), graceRadios.custom.checked);
  const {hours} = graceChosen();
  const out = $('rotate-until');
  if (!k || hours === undefined || hours > 720) {
    out.replaceChildren();
    return;
  }
  if (hours === 0) {
    out.replaceChildren('The old key stops working as soon as the new one is made.');
    return;
  }
  const end = Date.now() + hours * 3600 * 1000;
  const expires = k.expires_at ? Date.parse(k.expires_at) : Infinity;
  const until = new Date(Math.min(end, expires)).toISOString();
  out.replaceChildren('The old key works until ', timeEl(until, fmtDateTime(until)),
    expires < end ? ', when it expires anyway.' : ', then stops.');
}

function clearRotateFieldError() {
  const el = $('rotate-hours-error');
  el.textContent = '';
  show(el, false);
  $('rotate-hours').removeAttribute('aria-invalid');
  $('rotate-grace').classList.remove('invalid');
}

function showRotateFieldError(text) {
  const el = $('rotate-hours-error');
  el.textContent = text;
  show(el, true);
  $('rotate-hours').setAttribute('aria-invalid', 'true');
  $('rotate-grace').classList.add('invalid');
}

function openRotate(k, returnTo) {
  state.rotateKey = k;
  state.rotateReturn = returnTo;
  $('rotate-title').textContent = `Rotate “${k.name}”`;
  $('rotate-text').textContent = `A new key replaces ${k.hint}: it has the same name, permissions, `
    + 'rate limit, allowed IP addresses and expiration, and is shown once. Give it to the integration; '
    + 'the old key keeps working for the time you choose here, then stops.';
  graceRadios[String(GRACE_DEFAULT_HOURS)].checked = true;
  $('rotate-hours').value = '';
  clearRotateFieldError();
  showBanner($('rotate-error'), '');
  syncRotate();
  $('rotate-dialog').showModal();
  graceRadios[String(GRACE_DEFAULT_HOURS)].focus();
}

async function submitRotate(ev) {
  ev.preventDefault();
  const k = state.rotateKey;
  const team = state.team;
  const banner = $('rotate-error');
  if (!k) return;
  clearRotateFieldError();
  showBanner(banner, '');
  const chosen = graceChosen();
  if (chosen.problem) {
    showRotateFieldError(chosen.problem);
    showBanner(banner, 'Please correct the field marked below.');
    (graceRadios.custom.checked ? $('rotate-hours') : graceRadios[String(GRACE_DEFAULT_HOURS)]).focus();
    return;
  }
  const btn = $('rotate-submit');
  btn.disabled = true;
  btn.textContent = 'Rotating…';
  let created;
  let old = k;
  try {
    created = await api('POST', teamPath(`/${encodeURIComponent(k.id)}/rotate`), {grace_period_hours: chosen.hours});
    try {
      old = await api('GET', teamPath(`/${encodeURIComponent(k.id)}`));  // its grace end, as stored
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
    }
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    const mine = e.details.filter((d) => d.field === 'grace_period_hours');
    const rest = e.details.filter((d) => d.field !== 'grace_period_hours').map(detailSentence);
    if (mine.length) {
      if (!graceRadios.custom.checked) {  // a preset refused: show it in the field that can change it
        graceRadios.custom.checked = true;
        $('rotate-hours').value = String(chosen.hours);
        syncRotate();
      }
      showRotateFieldError(mine.map(detailSentence).join(' '));
      $('rotate-hours').focus();
    }
    showBanner(banner, rest.length ? `${e.message} ${rest.join(' ')}`
      : mine.length ? 'Please correct the field marked below.' : e.message);
    if (!mine.length) banner.focus();
    // Revoked, rotated or deleted meanwhile: the table is out of date.
    if ([404, 409].includes(e.status) && state.team === team) loadKeys(false);
    return;
  } finally {
    btn.disabled = false;
    btn.textContent = 'Rotate Key';
  }
  state.related.clear();
  state.related.set(old.id, old);
  state.related.set(created.id, created);
  state.rotateKey = null;  // rotated: the close handler leaves the focus to the one-time screen
  $('rotate-dialog').close();
  const note = old.revoked_at || chosen.hours === 0
    ? `The old key ${old.hint} was revoked: it no longer works.`
    : [`The old key ${old.hint} keeps working until `, timeEl(old.expires_at, fmtDateTime(old.expires_at)),
      '. Give the integration the new key before then.'];
  const menuBtn = (id) => {
    const r = rowOf(id);
    return r && r.querySelector('.menu-btn');
  };
  showSecret(created, {note, returnTo: () => menuBtn(created.id) || menuBtn(old.id)});
  if (state.team === team) {
    loadKeys(false);
    loadExpiring();
  }
}

// expiry warnings ------------------------------------------------------------------------------------

/**
 * The banner above the table: how many active keys of the team stop working within 7 days, whatever
 * the filters and however many pages (?expiring_within_days=7, every page). Keys in the grace period
 * of a rotation are left out: their end is planned, and their row says so.
 */
async function loadExpiring() {
  if (state.expiryAbort) state.expiryAbort.abort();
  const ctrl = new AbortController();
  state.expiryAbort = ctrl;
  const team = state.team;
  let n = 0;
  try {
    let cursor = null;
    for (let pages = 0; pages < 100; pages++) {
      const params = new URLSearchParams({expiring_within_days: String(EXPIRY_WARN_DAYS), limit: '100'});
      if (cursor) params.set('cursor', cursor);
      const page = await api('GET', `${teamPath()}?${params}`, undefined, ctrl.signal);
      n += page.data.filter((k) => !k.rotated_to).length;
      cursor = page.has_more ? page.next_cursor : null;
      if (!cursor) break;
    }
  } catch (e) {
    if (e.name === 'AbortError') return;
    if (!(e instanceof ApiError)) throw e;
    return;  // a warning that cannot be had is left as it was; the list says what went wrong
  } finally {
    if (state.expiryAbort === ctrl) state.expiryAbort = null;
  }
  if (ctrl.signal.aborted || state.team !== team) return;
  setExpiryBanner(n);
}

function setExpiryBanner(n) {
  const text = n === 1 ? `1 key expires within ${EXPIRY_WARN_DAYS} days.`
    : `${n} keys expire within ${EXPIRY_WARN_DAYS} days.`;
  // Untouched when unchanged: the status region reads out changes only.
  if (n > 0 && $('expiry-count').textContent !== text) $('expiry-count').textContent = text;
  show($('expiry-banner'), n > 0);
}

// revoke and delete ------------------------------------------------------------------------------

let confirmAction = null;
let confirmReturn = null;

function confirmDialog({title, text, ok, action, returnTo}) {
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = ok;
  showBanner($('confirm-error'), '');
  confirmAction = action;
  confirmReturn = returnTo;
  $('confirm-dialog').showModal();
  $('confirm-cancel').focus();
}

async function submitConfirm(ev) {
  ev.preventDefault();
  const btn = $('confirm-ok');
  const label = btn.textContent;
  btn.disabled = true;
  btn.textContent = 'Working…';
  try {
    const next = await confirmAction();
    confirmReturn = next || confirmReturn;
    $('confirm-dialog').close();
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    showBanner($('confirm-error'), e.message);
  } finally {
    btn.disabled = false;
    btn.textContent = label;
  }
}

function confirmRevoke(k, returnTo) {
  confirmDialog({
    title: 'Revoke Key',
    text: `Revoke “${k.name}” (${k.hint})? It stops working at once: every request made with it gets 401. `
      + 'The key stays in the list so you can still see what it did. A revoked key cannot be reactivated.',
    ok: 'Revoke Key',
    returnTo,
    action: async () => {
      const updated = await api('POST', teamPath(`/${encodeURIComponent(k.id)}/revoke`));
      const row = state.keys.has(updated.id) ? putRow(updated) : null;
      announce(`Key “${updated.name}” revoked.`);
      loadExpiring();
      return row && row.querySelector('.menu-btn');
    },
  });
}

function removeRow(id) {
  const row = rowOf(id);
  let next = null;
  if (row) {
    const sib = row.nextElementSibling || row.previousElementSibling;
    next = sib ? sib.querySelector('.menu-btn') : $('create-open');
    row.remove();
  }
  state.keys.delete(id);
  updateListMeta(!$('load-more').hidden);
  return next;
}

function confirmDelete(k, returnTo) {
  confirmDialog({
    title: 'Delete Key',
    text: `Delete “${k.name}” (${k.hint})? ${k.status === 'active' ? 'It stops working at once and' : 'It'} `
      + 'disappears from the list. Its audit records are kept. This cannot be undone.',
    ok: 'Delete Key',
    returnTo,
    action: async () => {
      try {
        await api('DELETE', teamPath(`/${encodeURIComponent(k.id)}`));
      } catch (e) {
        if (!(e instanceof ApiError) || e.status !== 404) throw e;  // already gone: same outcome
      }
      announce(`Key “${k.name}” deleted.`);
      loadExpiring();
      return removeRow(k.id) || $('create-open');
    },
  });
}

// ---------------------------------------------------------------------------------------------
// teams and start-up

function chooseTeam(teams) {
  const want = new URLSearchParams(window.location.search).get('team');
  return teams.find((t) => t.id === want)
    || teams.find((t) => ADMIN_ROLES.has(t.role))
    || teams[0];
}

function notAllowed(title, text) {
  $('not-allowed-title').textContent = title;
  $('not-allowed-text').textContent = text;
  show($('not-allowed'), true);
  show($('keys'), false);
}

function selectTeam(team) {
  state.team = team;
  state.keys.clear();
  state.related.clear();
  relatedAsked.clear();
  state.cursor = null;
  closeMenu(false);
  if (state.expiryAbort) state.expiryAbort.abort();
  show($('expiry-banner'), false);
  $('keys-body').replaceChildren();
  const url = new URL(window.location.href);
  if (state.me.teams.length > 1) url.searchParams.set('team', team.id);
  else url.searchParams.delete('team');
  window.history.replaceState(null, '', url);
  document.title = `API Keys · ${team.name} · Looped`;
  if (!ADMIN_ROLES.has(team.role)) {
    if (state.listAbort) state.listAbort.abort();
    notAllowed('Only owners and admins can manage API keys',
      `The API Keys page is for owners and admins of a team. You are a member of ${team.name}: `
      + 'ask one of its owners or admins if you need a key.');
    return;
  }
  show($('not-allowed'), false);
  show($('keys'), true);
  $('filter-q').value = '';
  $('filter-status').value = '';
  setUnusedFilter(false);
  loadKeys(false);
  loadExpiring();
}

const ROLE_LABEL = {OWNER: 'Owner', ADMIN: 'Admin', MEMBER: 'Member'};

async function start() {
  setupMenu();
  setupRotate();
  createForm = keyForm($('create-fields'), {mode: 'create'});
  editForm = keyForm($('edit-fields'), {mode: 'edit'});

  setupDialog($('create-dialog'), () => focusSoon($('create-open')));
  setupDialog($('secret-dialog'), closeSecret);
  setupDialog($('details-dialog'), closeDetails);
  setupDialog($('confirm-dialog'), () => {
    confirmAction = null;
    focusSoon(returnTarget(confirmReturn));
  });
  // Closing the one-time screen by accident (Escape) would lose the key: only its button closes it.
  $('secret-dialog').addEventListener('cancel', (ev) => ev.preventDefault());
  $('secret-done').addEventListener('click', () => $('secret-dialog').close());
  $('secret-copy').addEventListener('click', copySecret);
  $('secret-value').addEventListener('focus', selectSecret);

  $('create-open').addEventListener('click', openCreate);
  $('create-form').addEventListener('submit', submitCreate);
  $('details-edit').addEventListener('click', startEdit);
  $('edit-cancel').addEventListener('click', cancelEdit);
  $('edit-form').addEventListener('submit', submitEdit);
  $('details-dialog').addEventListener('cancel', (ev) => {
    if (!$('edit-form').hidden) {  // Escape while editing goes back to the details first
      ev.preventDefault();
      cancelEdit();
    }
  });
  $('confirm-form').addEventListener('submit', submitConfirm);
  $('load-more').addEventListener('click', () => loadKeys(true));
  $('filters').addEventListener('submit', (ev) => { ev.preventDefault(); loadKeys(false); });
  $('filter-status').addEventListener('change', () => loadKeys(false));
  $('filter-unused').addEventListener('click', () => {
    setUnusedFilter(!unusedFilterOn());
    loadKeys(false);
  });
  let searchTimer = 0;
  $('filter-q').addEventListener('input', () => {
    window.clearTimeout(searchTimer);
    searchTimer = window.setTimeout(() => loadKeys(false), SEARCH_DELAY_MS);
  });
  $('team').addEventListener('change', (ev) => {
    const t = state.me.teams.find((x) => x.id === ev.target.value);
    if (t) selectTeam(t);
  });
  window.setInterval(refreshRelativeTimes, 30000);

  try {
    state.me = await api('GET', '/v1/me');
  } catch (e) {
    show($('loading'), false);
    showBanner($('page-error'), e instanceof ApiError ? e.message : 'The page could not start.');
    return;
  }
  show($('loading'), false);
  $('who').textContent = `Signed in as ${state.me.user}`;
  show($('who'), true);
  const teams = state.me.teams || [];
  if (teams.length === 0) {
    notAllowed('You are not in any team', 'Your account does not belong to any team yet. '
      + 'Ask an owner or admin of your team to add you.');
    return;
  }
  const team = chooseTeam(teams);
  if (teams.length > 1) {
    const sel = $('team');
    sel.replaceChildren(...teams.map((t) =>
      h('option', {value: t.id, selected: t.id === team.id}, `${t.name} (${ROLE_LABEL[t.role] || t.role})`)));
    show($('team-pick'), true);
  } else {
    $('team-one').textContent = `Team: ${team.name}`;
    show($('team-one'), true);
  }
  if (teams.some((t) => ADMIN_ROLES.has(t.role))) ensureCatalog();
  selectTeam(team);
}

start();
