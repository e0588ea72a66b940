// The step panel, stepped in the browser (step_view.py).
//
// Every part (buttons, slider, heading, one chart or text each) is an instance of one
// components-v2 component
// with a stable key; the parts of one step panel form a group that shares this module. Each part
// holds the server's window of steps (headings, figure JSON built in Python). A click or an
// arrow key redraws every part at once, in the same task (a chart drawn ahead into a hidden
// div of the same fixed size is swapped in, else Plotly.react draws it), then reports the
// step to the server ({step, seq}); until the server echoes that seq, data from older reruns
// does not move the view back. A part whose step and figure are already shown is not redrawn.

const groups = new Map();
const style = document.createElement("link");
style.rel = "stylesheet";
style.href = new URL("step_view.css", import.meta.url).href;
document.head.appendChild(style);
let plotly = null; // Promise of plotly.js (the copy shipped with the plotly Python package)
let counter = 0;
const CONFIG = { displaylogo: false, responsive: true };
const MOVES = [
  ["first", "First", "\u00AB"],
  ["prev", "Previous", "\u2039"],
  ["next", "Next", "\u203A"],
  ["last", "Last", "\u00BB"],
];
const KEYS = { ArrowLeft: "prev", ArrowRight: "next", Home: "first", End: "last" };
// A move the server has not echoed after this long is sent again (with a new seq): under a
// burst of clicks Streamlit's frontend can drop a component's state update, which left the
// server (URL, counters) behind the shown step until the next click.
const RESEND_MS = 3000;

// The moves sent and server runs seen, kept only when a test asks for them (by setting
// window.__fvStepLog to an array), so that it can say what went wrong.
function log(event) {
  const LOG = window.__fvStepLog;
  if (!Array.isArray(LOG)) return;
  LOG.push({ t: Math.round(performance.now()), ...event });
  if (LOG.length > 300) LOG.shift();
}

function loadPlotly(url) {
  if (!plotly) {
    plotly = new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = url;
      s.onload = () => resolve(window.Plotly);
      s.onerror = () => reject(new Error(`plotly.js did not load from ${url}`));
      document.head.appendChild(s);
    });
  }
  return plotly;
}

function group(id) {
  let g = groups.get(id);
  if (!g) {
    g = {
      parts: new Map(), // part name -> {host, data, show, dispose}
      server: null, // {step, seq} of the server's latest run
      mine: null, // {step, seq} of the user's latest move, until the server has seen it
      shown: null, // the step every part shows
      allowed: 0, // the furthest step the buttons may reach
      P: null, // plotly.js, once loaded
      setState: null, // the buttons part's setStateValue: how moves reach the server
      keys: false, // Left / Right / Home / End step the view
      onKey: null, // the keydown listener, while bound
      resend: null, // the timer that sends an unanswered move again
      wide: null, // [px, drawn wide]: the layout's width line and the server's layout
      onResize: null, // the resize listener reporting the width
      followed: null, // the lecturer's step, shown without a server run (a class's follower)
      // a follower tells the server its step when the window holds fewer steps ahead than
      // this (1 to 3, drawn once): the class's followers refill on different clicks
      ahead: 1 + Math.floor(Math.random() * 3),
    };
    groups.set(id, g);
  }
  return g;
}

// The user's latest move until the server has seen it; then the step a class's lecturer
// moved to, while the server has not run since; then the server's step.
function target(g) {
  if (g.mine && g.mine.seq !== g.server.seq) return g.mine.step;
  return g.followed ?? g.server.step;
}

// Whether a part holds step k's data (a chart's figure or null, a text, a heading).
function holds(part, k) {
  const table = part.data.figs ?? part.data.texts;
  return table === undefined || table[k] !== undefined;
}

// Every part shows the target step, or, while one of them lacks its data (a step beyond the
// window, reached by the slider), none moves: the server's answer brings that step's
// window, and the last part to get it shows it with all the others, in one task.
function showAll(g) {
  const k = target(g);
  for (const [name, part] of g.parts) {
    if (!part.host.isConnected) g.parts.delete(name);
  }
  const parts = [...g.parts.values()];
  if (!parts.every((part) => holds(part, k))) return;
  g.shown = k;
  for (const part of parts) part.show(k);
}

function move(g, to) {
  const k = target(g); // from a pending move's step, even before it is shown
  moveTo(g, { first: 0, prev: k - 1, next: k + 1, last: g.allowed }[to]);
}

function moveTo(g, step) {
  const n = Math.min(Math.max(step, 0), g.allowed);
  if (n === target(g) || !g.setState || Number.isNaN(n)) {
    showAll(g); // a slider dragged past what is allowed springs back
    return;
  }
  g.mine = { step: n, seq: `${Date.now().toString(36)}.${++counter}` };
  showAll(g);
  send(g);
}

function send(g) {
  log({ ev: "send", step: g.mine.step, seq: g.mine.seq });
  g.setState("move", g.mine);
  clearTimeout(g.resend);
  g.resend = setTimeout(() => {
    const bar = g.parts.get("buttons");
    const connected = !!bar && bar.host.isConnected;
    log({ ev: "resend?", mine: g.mine?.step, server: g.server?.step, connected });
    if (!g.mine || !connected || g.mine.seq === g.server?.seq) return;
    g.mine = { step: g.mine.step, seq: `${Date.now().toString(36)}.${++counter}` };
    send(g);
  }, RESEND_MS);
}

// A class's follower (room_follow.js): the lecturer moved to `step`. Every part that holds
// it shows it at once, with no server run, while the window holds `g.ahead` more steps;
// else the move goes to the server too, which sends the window around it. Answers whether
// the step was shown (else room_follow.js reruns the script).
function follow(g, step) {
  const parts = [...g.parts.values()].filter((part) => part.host.isConnected);
  if (!parts.length || !parts.every((part) => holds(part, step))) return false;
  log({ ev: "follow", step, shown: g.shown });
  const end = Math.min(step + g.ahead, g.allowed);
  if (parts.every((part) => holds(part, end))) {
    g.mine = null;
    g.followed = step;
    showAll(g);
  } else {
    g.followed = null;
    moveTo(g, step);
  }
  return true;
}

window.addEventListener("flashviz:follow", (event) => {
  for (const g of groups.values()) {
    if (follow(g, event.detail.step)) event.detail.handled = true;
  }
});

// Presentation mode's stage: scaled as a whole to fill the window (letterboxed to its
// aspect), centred; the CSS of presentation.py applies the variables.
let stage = null;
function fitStage() {
  const root = document.documentElement.style;
  if (!stage) {
    for (const v of ["--fv-stage-scale", "--fv-stage-x", "--fv-stage-y"]) root.removeProperty(v);
    return;
  }
  const [w, h] = stage;
  const s = Math.min(window.innerWidth / w, window.innerHeight / h);
  root.setProperty("--fv-stage-scale", String(s));
  root.setProperty("--fv-stage-x", `${(window.innerWidth - w * s) / 2}px`);
  root.setProperty("--fv-stage-y", `${(window.innerHeight - h * s) / 2}px`);
}
window.addEventListener("resize", fitStage);

// The page's layout depends on the window's width (step_view.WIDE_PX): say the width when
// it is on the other side of that line from the layout the server drew.
function reportWidth(g, wide) {
  if (!wide) return;
  g.wide = wide;
  const [px, drawnWide] = wide;
  if (window.innerWidth >= px !== drawnWide && g.setState) {
    g.setState("viewport", window.innerWidth);
  }
  if (!g.onResize) {
    let timer = null;
    g.onResize = () => {
      clearTimeout(timer);
      timer = setTimeout(() => reportWidth(g, g.wide), 250);
    };
    window.addEventListener("resize", g.onResize);
  }
}

function typing(el) {
  return !!el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName) ||
    !!el.closest?.('[role="slider"]'));
}

function bindKeys(g) {
  if (g.onKey) return;
  g.onKey = (e) => {
    const bar = g.parts.get("buttons");
    if (!bar || !bar.host.isConnected) {
      document.removeEventListener("keydown", g.onKey);
      g.onKey = null;
      return;
    }
    const to = KEYS[e.key];
    if (!to || !g.keys || e.altKey || e.ctrlKey || e.metaKey || typing(e.target)) return;
    e.preventDefault();
    move(g, to);
  };
  document.addEventListener("keydown", g.onKey);
}

function el(tag, cls, parent) {
  const e = document.createElement(tag);
  e.className = cls;
  parent.appendChild(e);
  return e;
}

function buttonsPart(host, part, g) {
  const root = el("div", "fv-buttons", host);
  const buttons = {};
  for (const [to, text, icon] of MOVES) {
    const b = el("button", "fv-button", root);
    b.type = "button";
    b.dataset.move = to;
    el("span", "fv-icon", b).textContent = icon;
    el("span", "fv-label", b).textContent = text;
    b.addEventListener("click", () => move(g, to));
    buttons[to] = b;
  }
  return (k) => {
    for (const [to, off] of Object.entries({
      first: k <= 0, prev: k <= 0, next: k >= g.allowed, last: k >= g.allowed,
    })) {
      if (buttons[to].disabled !== off) buttons[to].disabled = off;
    }
  };
}

// The step slider: dragging it moves every part (the global keys leave it alone: the
// range input's own arrow keys move it).
function sliderPart(host, part, g) {
  const root = el("div", "fv-slider", host);
  const label = el("label", "fv-slider-label", root);
  const input = el("input", "fv-range", root);
  input.type = "range";
  input.min = "0";
  input.step = "1";
  input.setAttribute("aria-label", part.data.label);
  input.addEventListener("input", () => moveTo(g, Number(input.value)));
  // Only what differs is set: the server's rerun of the same step changes nothing shown.
  return (k) => {
    const last = String(part.data.last);
    if (input.max !== last) input.max = last;
    if (input.disabled !== part.data.last <= 0) input.disabled = part.data.last <= 0;
    if (input.value !== String(k)) input.value = String(k);
    const text = `${part.data.label} ${k} of ${last}`;
    if (label.textContent !== text) label.textContent = text;
  };
}

// A text (HTML built on the server, escaped there): swapped with the step; a button with
// data-goto moves to its step.
function textPart(host, part, g) {
  const box = el("div", `fv-text fv-text-${part.data.part}`, host);
  box.addEventListener("click", (e) => {
    const b = e.target.closest?.("[data-goto]");
    if (b) moveTo(g, Number(b.dataset.goto));
  });
  let shown = null;
  return (k) => {
    const html = part.data.bodies[part.data.texts[k]];
    if (html === undefined || html === shown) return; // not in the window yet, or shown
    box.innerHTML = html;
    shown = html;
  };
}

function headingPart(host, part) {
  const h = el("h3", "fv-heading", host);
  return (k) => {
    const text = part.data.texts[k];
    if (text !== undefined && h.textContent !== text) h.textContent = text;
  };
}

// A chart: up to three plot divs ("slots") stacked in a fixed-height box, one visible. The
// shown step is drawn (Plotly.react) only if no slot holds it yet; the next and previous
// steps are drawn into hidden slots when the browser is idle, so that a step usually only
// swaps which slot is visible.
function chartPart(host, part, g) {
  const box = el("div", "fv-chart", host);
  const note = el("div", "fv-note", box);
  note.style.display = "none";
  let noteHtml = null; // the rich note shown (null: the plain one, or none)
  const slots = []; // {div, json, height}
  let current = null; // the visible slot (null: the note, or nothing yet)
  let idle = null;
  const holding = (json) => slots.find((s) => s.json === json);
  const spare = (keep) => {
    let s = slots.find((t) => t !== current && !keep.has(t.json));
    if (!s && slots.length < 3) {
      s = { div: el("div", "fv-plot fv-hidden", box), json: null, height: 0 };
      slots.push(s);
    }
    return s ?? slots.find((t) => t !== current);
  };
  const draw = (slot, json) => {
    const fig = JSON.parse(json);
    slot.json = json;
    slot.height = fig.layout.height;
    g.P.react(slot.div, fig.data, fig.layout, CONFIG);
  };
  const reveal = (slot) => {
    const height = `${slot.height}px`;
    if (box.style.height !== height) box.style.height = height;
    if (note.style.display !== "none") note.style.display = "none";
    if (current === slot) return;
    slot.div.classList.remove("fv-hidden");
    current?.div.classList.add("fv-hidden");
    current = slot;
  };
  const prefetch = () => {
    idle = null;
    const k = g.shown;
    const keep = new Set([k, k + 1, k - 1].map((s) => part.data.figs[s]));
    for (const s of [k + 1, k - 1]) {
      const json = part.data.figs[s];
      if (json && !holding(json)) {
        draw(spare(keep), json);
        idle = requestIdleCallback(prefetch, { timeout: 1000 }); // one chart per idle slot
        return;
      }
    }
  };
  part.dispose = () => {
    if (idle !== null) cancelIdleCallback(idle);
    for (const slot of slots) g.P?.purge(slot.div); // its resize listener, its data
  };
  return (k) => {
    const json = part.data.figs[k];
    if (json === undefined) return; // not in the window yet: the server's rerun brings it
    if (!g.P) {
      loadPlotly(part.data.plotly).then((P) => {
        g.P = P;
        showAll(g);
      });
      return;
    }
    if (json === null) {
      current?.div.classList.add("fv-hidden");
      current = null;
      const rich = part.data.notes?.[k] || null; // HTML built and escaped by the server
      if (rich !== noteHtml || (!rich && note.textContent !== part.data.note)) {
        if (rich) note.innerHTML = rich;
        else note.textContent = part.data.note;
        noteHtml = rich;
      }
      if (note.style.display !== "") note.style.display = "";
    } else {
      let slot = holding(json);
      if (!slot) {
        slot = spare(new Set([json]));
        draw(slot, json);
      }
      reveal(slot);
    }
    if (idle === null) idle = requestIdleCallback(prefetch, { timeout: 1000 });
  };
}

const PARTS = { buttons: buttonsPart, heading: headingPart };

export function render(component) {
  const { data, parentElement, setStateValue } = component;
  const g = group(data.group);
  let part = g.parts.get(data.part);
  if (!part || part.host !== parentElement) {
    part = { host: parentElement, data };
    const kinds = { text: textPart, slider: sliderPart };
    const make = kinds[data.kind] ?? PARTS[data.part] ?? chartPart;
    part.show = make(parentElement, part, g);
    g.parts.set(data.part, part);
  }
  part.data = data;
  if (data.part === "buttons") g.followed = null; // a server run: its step holds
  g.server = { step: data.step, seq: data.seq };
  g.allowed = data.allowed;
  if (data.part === "buttons") {
    log({ ev: "run", step: data.step, seq: data.seq, shown: g.shown, mine: g.mine?.step });
    g.setState = setStateValue;
    g.keys = data.keys;
    if (data.keys) bindKeys(g);
    reportWidth(g, data.wide);
    if (JSON.stringify(stage) !== JSON.stringify(data.stage ?? null)) {
      stage = data.stage ?? null;
      fitStage();
    }
  }
  showAll(g);
  // Streamlit calls the latest render's cleanup when the part unmounts (leaving the page)
  return () => {
    if (!part.host.isConnected) part.dispose?.();
  };
}
