"""A visible Light / Dark switch for the whole app.

Streamlit 1.67 has no Python API to set the theme at run time (``st.set_option`` takes
``client.*`` options only); the theme lives in the browser. So the switch is a small
components-v2 component that asks Streamlit's frontend for the theme the same way a person
does: it selects Light or Dark in the main menu's theme section (the menu opened unseen),
which goes through Streamlit's own ``setTheme``: the whole page changes, and Streamlit keeps
the choice in its local storage. Then the component reruns the app, whose charts take
their colours from the theme the browser reports (``st.context.theme.type``,
``flashviz.app.charts``). It also reruns when the theme changes another way (the main menu,
the operating system's setting), so the charts always follow the page.

Kept across pages: a page change inside the app keeps the frontend's theme; a reload of
another page's address (Streamlit stores its choice per address) gets the last choice made
with this switch back from ``localStorage["flashviz-theme"]``. Should the menu ever be
missing, the switch writes Streamlit's stored choice for this address and reloads once.
"""

from __future__ import annotations

import streamlit as st

from flashviz.app.charts import theme_name

KEY = "theme_switch"  # the sidebar's switch; presentation mode's step bar has its own

HTML = """<div class="fv-theme" role="group" aria-label="Colour theme">
<span class="fv-theme-label">Theme</span>
<button type="button" class="fv-theme-button" data-theme="light">Light</button>
<button type="button" class="fv-theme-button" data-theme="dark">Dark</button>
</div>"""

CSS = """
.fv-theme { display: flex; align-items: center; gap: 0.5rem; }
.fv-theme-label { margin-right: 0.25rem; }
.fv-theme-button {
  min-height: 2.25rem; padding: 0.2rem 0.9rem; font: inherit; cursor: pointer;
  color: var(--st-text-color, inherit); background: var(--st-background-color, transparent);
  border: 1px solid var(--st-border-color, rgba(128, 128, 128, 0.4));
  border-radius: var(--st-button-radius, 0.5rem);
}
.fv-theme-button:hover, .fv-theme-button:focus-visible {
  color: var(--st-primary-color, inherit); border-color: var(--st-primary-color, currentColor);
}
.fv-theme-button[aria-pressed="true"] {
  color: var(--st-background-color, #fff); background: var(--st-primary-color, #0072b2);
  border-color: var(--st-primary-color, #0072b2);
}
"""

JS = r"""
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
"""

_component = st.components.v2.component("flashviz.theme_switch", html=HTML, css=CSS, js=JS)


def _theme_changed() -> None:
    """The browser shows another theme now: this rerun draws the charts in it."""


def theme_switch(key: str = KEY) -> None:
    """The Light / Dark switch (the server's current theme tells the browser what the
    charts were drawn in)."""
    _component(key=key, data={"theme": theme_name()}, on_theme_change=_theme_changed)
