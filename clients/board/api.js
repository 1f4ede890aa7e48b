// The board's only way to the platform: the gateway's public API with the user's bearer token.

const TOKEN_KEY = "blueprint.token";

export class Refused extends Error {
  constructor(problem, status) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.problem = problem;
    this.status = status;
  }
}

export function token() {
  // An identity provider returning to the board puts `#access_token=...` in the fragment, which
  // never reaches a server or a log: keep it and clean the address bar.
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("access_token")) {
    sessionStorage.setItem(TOKEN_KEY, fragment.get("access_token"));
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem(TOKEN_KEY) || localStorage.getItem(TOKEN_KEY);
}

export function saveToken(value) {
  localStorage.setItem(TOKEN_KEY, value.trim());
}

export function forgetToken() {
  localStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(TOKEN_KEY);
}

function claims() {
  try {
    const payload = token().split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch {
    return {};
  }
}

export function roles() {
  return claims().roles || [];
}

export function userId() {
  return claims().sub || null;
}

export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  const value = text ? JSON.parse(text) : null;
  if (!resp.ok) throw new Refused(value || {}, resp.status);
  return value;
}

export async function all(path) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api("GET", `${path}${sep}limit=200${cursor ? `&cursor=${cursor}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < 5000);
  return items;
}
