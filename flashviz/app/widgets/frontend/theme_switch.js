// The Light / Dark switch (theme_switch.py): selects the main menu's theme item unseen.
const STORE = "flashviz-theme"; // the last theme chosen with this switch
const RELOADED = "flashviz-theme-reloaded"; // sessionStorage: the fallback reloaded once
const LABEL = { light: "Light", dark: "Dark" };
// One state for every switch on the page (the sidebar's, presentation mode's).
const S = (window.__flashvizTheme ??= {
  server: null, pending: null, asked: null, roots: new Map(), timer: null, restored: false,
});

function store(get, key, value) {
  try {
    if (get) return window.localStorage.getItem(key);
    if (value === null) window.localStorage.removeItem(key);
    else window.localStorage.setItem(key, value);
  } catch (e) { /* storage blocked: the switch still works for this page */ }
  return null;
}

// 'dark' or 'light': what the page shows now (the luminance of the app's background).
function shown() {
  const app = document.querySelector(".stApp") || document.body;
  const c = (getComputedStyle(app).backgroundColor.match(/[\d.]+/g) || []).map(Number);
  if (c.length < 3) return "light";
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2] < 128 ? "dark" : "light";
}

function until(test, ms) {
  return new Promise((resolve) => {
    const end = performance.now() + ms;
    const tick = () => {
      const v = test();
      if (v || performance.now() > end) resolve(v);
      else setTimeout(tick, 20);
    };
    tick();
  });
}

function paint() {
  const now = S.pending || shown();
  for (const root of S.roots.keys()) {
    if (!root.isConnected) { S.roots.delete(root); continue; }
    for (const b of root.querySelectorAll("button[data-theme]"))
      b.setAttribute("aria-pressed", String(b.dataset.theme === now));
  }
}

// The server draws its charts in the theme it was told at the last rerun: rerun when the
// page shows another one (once per change, so a server that disagrees cannot loop).
function sync() {
  paint();
  if (S.pending) return;
  const now = shown();
  const mine = store(true, STORE);
  if (mine && mine !== now) store(false, STORE, null); // changed in the menu or the OS
  if (now === S.server) { S.asked = null; return; }
  if (S.asked === now) return;
  const trigger = [...S.roots.values()].at(-1);
  if (!trigger) return;
  S.asked = now;
  trigger("theme", now);
}

// Streamlit's own way: the main menu's theme item (the menu opened and closed unseen).
async function viaMenu(theme) {
  const button = document.querySelector('[data-testid="stMainMenuButton"]');
  if (!button) return false;
  const hide = document.createElement("style");
  hide.textContent = '[data-testid="stMainMenuPopover"] { visibility: hidden !important; }';
  document.head.appendChild(hide);
  try {
    const item = () =>
      document.querySelector(`[data-testid="stMainMenuItem-theme-${LABEL[theme]}"]`);
    if (!item()) button.click();
    const el = await until(item, 1000);
    if (!el) return false;
    el.click();
    return !!(await until(() => shown() === theme, 2000));
  } finally {
    const open = () => document.querySelector('[data-testid="stMainMenuPopover"]');
    if (open()) button.click(); // a theme item leaves the menu open: close it
    await until(() => !open(), 1000);
    hide.remove();
  }
}

async function apply(theme) {
  S.pending = theme;
  paint();
  store(false, STORE, theme);
  let ok = false;
  try { ok = await viaMenu(theme); } catch (e) { ok = false; }
  if (!ok && window.sessionStorage.getItem(RELOADED) !== theme) {
    // No menu: Streamlit's stored choice for this address, read at load.
    store(false, `stActiveTheme-${window.location.pathname}-v2`, JSON.stringify(LABEL[theme]));
    window.sessionStorage.setItem(RELOADED, theme);
    window.location.reload();
    return;
  }
  window.sessionStorage.removeItem(RELOADED);
  S.pending = null;
  sync();
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const root = parentElement.querySelector(".fv-theme");
  S.server = data.theme;
  S.roots.delete(root);
  S.roots.set(root, setTriggerValue); // the newest switch reruns the app
  if (!root.dataset.bound) {
    root.dataset.bound = "1";
    for (const b of root.querySelectorAll("button[data-theme]"))
      b.addEventListener("click", () => {
        if (!S.pending && b.dataset.theme !== shown()) apply(b.dataset.theme);
      });
  }
  if (!S.restored) {
    S.restored = true;
    const reloaded = window.sessionStorage.getItem(RELOADED);
    if (reloaded && reloaded === shown()) window.sessionStorage.removeItem(RELOADED); // it took
    const want = store(true, STORE);
    if (want in LABEL && want !== shown()) apply(want);
  }
  S.timer ??= setInterval(sync, 400);
  sync();
}
