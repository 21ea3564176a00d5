// The page's login, done the way JAM's browser SDK does it: the page calls
// JAM itself, across origins, reads the tokens from its own address after
// JAM's redirect, keeps them in sessionStorage (README.md says why, and
// what the Content-Security-Policy does about it), and sends the ID token
// to the app's API as a Bearer token.

const $ = (id) => document.getElementById(id);
const storageKey = "jam.tokens";

// The JAM to call and the app's ID in it, from the Go server.
const config = await (await fetch("/config.json", { cache: "no-store" })).json();

let tokens = JSON.parse(sessionStorage.getItem(storageKey)); // null when logged out
let timer; // the next refresh, or the logout at expiry without a refresh token
let refreshing = null; // the refresh in flight, shared by all who need it

// jam calls one of JAM's operations for the app as the browser SDK does:
// a JSON body or a Bearer ID token, cache: "no-cache", and anything but 200
// and 204 thrown.
async function jam(method, operation, { json, idToken } = {}) {
  const headers = {};
  if (json) headers["Content-Type"] = "application/json";
  if (idToken) headers.Authorization = `Bearer ${idToken}`;
  const url = new URL(`${encodeURIComponent(config.appID)}/${operation}`, config.jamURL);
  const res = await fetch(url, { method, headers, body: json && JSON.stringify(json), cache: "no-cache" });
  if (res.status === 200 || res.status === 204) return res;
  const body = await res.text();
  throw Object.assign(new Error(`${res.status} ${body}`.trim()), { status: res.status });
}

// claims decodes the ID token's claims, unverified: the page only shows
// them and times the refresh by them. The API verifies the token.
function claims(idToken) {
  const base64 = idToken.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

// refreshMargin is how long before its expiry an ID token is refreshed: a
// quarter of its lifetime, at most five minutes.
const refreshMargin = ({ iat, exp }) => Math.min(300, (exp - iat) / 4) * 1000;

// save keeps the tokens (null logs out on this page) and plans the next
// refresh. Tokens whose ID token is no JWT are not kept.
function save(next) {
  clearTimeout(timer);
  let c = null;
  try {
    c = next && claims(next.idToken);
  } catch {}
  tokens = c ? next : null;
  if (tokens) {
    sessionStorage.setItem(storageKey, JSON.stringify(tokens));
    const left = c.exp * 1000 - Date.now();
    timer = tokens.refreshToken
      ? setTimeout(() => act("refresh", refresh), Math.max(left - refreshMargin(c), 0))
      : setTimeout(() => save(null), Math.max(left, 0));
  } else {
    sessionStorage.removeItem(storageKey);
  }
  render();
  if (next && !c) throw new Error("the ID token is not a JWT");
}

// refresh gets a new ID token for the refresh token. A refusal means the
// refresh token was deleted or has expired: the login is over. Either
// applies only if the page still holds that refresh token: a logout, or
// another login, may have come while JAM answered.
function refresh() {
  const { refreshToken } = tokens;
  const current = () => tokens?.refreshToken === refreshToken;
  refreshing ??= (async () => {
    try {
      const res = await jam("POST", "refresh", { json: { refreshToken } });
      const { idToken } = await res.json();
      if (current()) save({ idToken, refreshToken });
    } catch (err) {
      if ((err.status === 401 || err.status === 404) && current()) save(null);
      throw err;
    }
  })().finally(() => (refreshing = null));
  return refreshing;
}

// freshIDToken returns an ID token that is not about to expire.
async function freshIDToken() {
  const c = claims(tokens.idToken);
  if (tokens.refreshToken && c.exp * 1000 - refreshMargin(c) <= Date.now()) await refresh();
  return tokens.idToken;
}

async function login() {
  const email = $("email").value.trim();
  await jam("POST", "authenticate", { json: { email } });
  $("sent").textContent = `A sign-in link is on its way to ${email}.`;
  $("sent").hidden = false;
  if (config.outboxURL) {
    $("outbox-link").href = config.outboxURL;
    $("outbox").hidden = false;
  }
}

async function callAPI() {
  const headers = { Authorization: `Bearer ${await freshIDToken()}` };
  const res = await fetch("/api/me", { headers, cache: "no-store" });
  $("api-result").textContent = `${res.status} ${(await res.text()).trim()}`;
}

// logout deletes this page's refresh token at JAM, or with everywhere all
// the user's. A refusal ends the login here all the same; an outage keeps
// it, so that the user can try again while the refresh token still works.
async function logout(everywhere) {
  if (!everywhere && !tokens.refreshToken) return save(null);
  const idToken = await freshIDToken();
  const operation = everywhere ? "user/refresh" : `user/refresh/${encodeURIComponent(tokens.refreshToken)}`;
  try {
    await jam("DELETE", operation, { idToken });
  } catch (err) {
    if (err.status === 401 || err.status === 404) save(null);
    throw err;
  }
  save(null);
}

function render() {
  $("loading").hidden = true;
  $("login").hidden = Boolean(tokens);
  $("user").hidden = !tokens;
  if (!tokens) {
    $("sent").hidden = $("outbox").hidden = true;
    $("api-result").textContent = "";
    return;
  }
  const { email, exp } = claims(tokens.idToken);
  const expiry = new Date(exp * 1000);
  $("greeting").textContent = `Signed in as ${email}`;
  $("expiry").dateTime = expiry.toISOString();
  $("expiry").textContent = expiry.toLocaleTimeString();
  $("refresh").disabled = !tokens.refreshToken;
}

// act runs what a user or the timer asked for, and shows what went wrong.
async function act(what, action) {
  $("error").hidden = true;
  try {
    await action();
  } catch (err) {
    $("error").textContent = `${what}: ${err.message}`;
    $("error").hidden = false;
  }
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  act("login", login);
});
$("call-api").addEventListener("click", () => act("API", callAPI));
$("refresh").addEventListener("click", () => act("refresh", refresh));
$("logout").addEventListener("click", () => act("logout", () => logout(false)));
$("logout-all").addEventListener("click", () => act("logout everywhere", () => logout(true)));

// JAM's redirect lands here with the tokens in the query string: keep them,
// and take them out of the address bar and the history.
const params = new URLSearchParams(location.search);
if (params.has("idToken")) {
  const landed = { idToken: params.get("idToken"), refreshToken: params.get("refreshToken") ?? "" };
  params.delete("idToken");
  params.delete("refreshToken");
  history.replaceState(null, "", location.pathname + (params.size ? `?${params}` : "") + location.hash);
  act("sign-in link", () => save(landed));
} else {
  act("stored login", () => save(tokens));
}
