// A class's follower (class_room.py): waits on the server for the room's next version
// (room_routes.py: one request held open, no script run) and follows it. When only the
// step changed and the step panel holds that step, the panel moves by itself (the
// "flashviz:follow" event, answered by step_view.js); else this reruns the script, which
// applies the lecturer's view. While the student explores, it only keeps them counted.
const S = (window.__flashvizRoom ??= {
  data: null, // the server's latest: {url, code, follower, version, params, exploring}
  trigger: null, // setTriggerValue of the newest mount
  version: null, // the room version this page shows
  view: null, // the lecturer's parameters this page shows
  loop: 0, // the running loop's number (0: none)
  loops: 0, // loops started so far
  abort: null, // cancels the open request when the page leaves the class
  beat: 0, // when the server last counted this follower
});
const BEAT_MS = 5000; // the server counts a follower that asked within 20 s
const RETRY_MS = 2000;

function log(event) {
  const LOG = window.__fvStepLog;
  if (Array.isArray(LOG)) LOG.push({ t: Math.round(performance.now()), ev: "room", ...event });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The views without their step: equal when only the step differs.
function rest(params) {
  return JSON.stringify(Object.entries(params ?? {}).filter(([k]) => k !== "step").sort());
}

async function ask(d, signal) {
  const url = new URL(d.url, window.location.origin);
  const beat = Date.now() - S.beat > BEAT_MS;
  url.searchParams.set("after", String(S.version ?? 0));
  url.searchParams.set("follower", d.follower);
  if (beat) url.searchParams.set("beat", "1");
  const r = await fetch(url, { cache: "no-store", signal });
  const body = await r.json();
  if (beat && r.ok) S.beat = Date.now();
  return { status: r.status, body };
}

// Shown by itself when only the step moved and the step panel holds it (a question asked
// or revealed changes the version, not the view: the script shows it).
function moveAlone(params) {
  const same = rest(params) === rest(S.view);
  if (!same || params.step === undefined || params.step === S.view?.step) return false;
  const event = new CustomEvent("flashviz:follow", {
    detail: { step: Number(params.step), handled: false },
  });
  window.dispatchEvent(event);
  return event.detail.handled;
}

async function run(number) {
  while (S.loop === number) {
    let answer;
    try {
      answer = await ask(S.data, S.abort.signal);
    } catch (e) {
      if (S.loop !== number) return;
      await sleep(RETRY_MS); // the server restarts or the network drops: ask again
      continue;
    }
    if (S.loop !== number) return;
    const { status, body } = answer;
    if (status === 503) {
      await sleep(Number(body.retry_ms) || RETRY_MS);
      continue;
    }
    if (status !== 200) {
      log({ status }); // 404: the class ended; 409: no longer counted (a run counts again)
      S.trigger?.("changed", `ended.${Date.now()}`); // the script says the class ended
      await sleep(RETRY_MS);
      continue;
    }
    if (body.version === S.version) continue;
    S.version = body.version;
    if (S.data.exploring) continue;
    const alone = moveAlone(body.params);
    log({ version: body.version, step: body.params.step, alone });
    if (alone) S.view = body.params;
    else S.trigger?.("changed", body.version);
  }
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const restart = !S.loop || S.data?.code !== data.code || S.data?.follower !== data.follower;
  S.data = data;
  S.trigger = setTriggerValue;
  if (data.version !== null) {
    S.version = data.version; // what the script applied
    S.view = data.params;
  }
  if (restart) {
    S.abort?.abort();
    S.abort = new AbortController();
    S.loop = ++S.loops;
    run(S.loop);
  }
  // Streamlit calls the cleanup when the page leaves the class (the part unmounts)
  return () => {
    if (parentElement.isConnected) return;
    S.loop = 0;
    S.abort?.abort();
  };
}
