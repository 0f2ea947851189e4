// Live queue (Server-Sent Events → htmx refresh), ticking SLA clocks, resident charts. No inline scripts (CSP).
(function () {
  "use strict";
  const body = document.body;
  const skew = Number(body.dataset.now || Date.now()) - Date.now();
  const now = () => Date.now() + skew;

  function fmt(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    const mm = String(m).padStart(2, "0"), ss = String(sec).padStart(2, "0");
    return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
  }
  function tick() {
    document.querySelectorAll(".clock[data-since]").forEach((el) => { el.textContent = fmt(now() - Number(el.dataset.since)); });
    document.querySelectorAll(".clock[data-due]").forEach((el) => {
      const left = Number(el.dataset.due) - now();
      el.classList.toggle("overdue", left < 0);
      el.textContent = left < 0 ? `${el.dataset.overdue} ${fmt(-left)}` : fmt(left);
    });
  }
  setInterval(tick, 1000);
  document.addEventListener("htmx:afterSwap", tick);
  document.addEventListener("DOMContentLoaded", tick);

  // htmx requests carry the CSRF token as a header as well (forms also post it as a field).
  document.addEventListener("htmx:configRequest", (e) => { e.detail.headers["X-CSRF-Token"] = body.dataset.csrf || ""; });

  function startStream() {
    const queue = document.querySelector("[data-stream][data-fragment]");
    if (!queue || !window.EventSource) return;
    const live = document.getElementById("live");
    const es = new EventSource(queue.dataset.stream);
    let version = null;
    // One queue fetch at a time. htmx queues a second request on the same target and resolves its promise at once,
    // before the swap: the queue logic then ran on the old rows and a new SOS arrived without cue or auto-open
    // (seen in CI). A version heard while a fetch is in flight fetches again once it has been swapped in.
    let loading = false, again = false;
    function afterLoad(v) {
      queue.dataset.version = String(v);
      document.dispatchEvent(new CustomEvent("ec:queue"));
      const detail = document.querySelector("#detail [data-alert]");
      if (detail) {
        const id = detail.dataset.alert;
        const item = document.querySelector(`#queue [data-alert="${id}"]`);
        if (item && item.dataset.state !== detail.dataset.state) {
          window.htmx.ajax("GET", `/console/alerts/${id}`, { source: "#detail", target: "#detail", swap: "innerHTML" });
        }
      }
    }
    function load() {
      if (loading) { again = true; return; }
      loading = true;
      again = false;
      const v = version;
      const done = (ok) => {
        try {
          if (ok) afterLoad(v);
        } finally { // whatever happened, the next version is still fetched: a stuck flag would freeze the queue
          loading = false;
          if (!ok) setTimeout(load, 1000);
          else if (again) load();
        }
      };
      // Its own source element: without one htmx takes the body for every htmx.ajax call, so a queue fetch asked for
      // while a detail fetch was in flight was queued behind it with its promise resolved at once, before the swap
      // (a repeated SOS then reached the rows without the "repeated" cue; seen in a loaded run).
      window.htmx.ajax("GET", queue.dataset.fragment, { source: queue, target: queue, swap: "innerHTML" }).then(() => done(true), () => done(false));
    }
    es.addEventListener("open", () => { if (live) { live.textContent = live.dataset.ok; live.className = "live ok"; } });
    es.addEventListener("error", () => { if (live) { live.textContent = live.dataset.lost; live.className = "live lost"; } });
    es.addEventListener("alerts", (ev) => {
      const data = JSON.parse(ev.data);
      queue.dataset.heard = String(data.version); // the last version the stream told of (tests wait on it)
      if (data.version === version) return;
      version = data.version;
      if (live) { live.textContent = live.dataset.ok; live.className = "live ok"; }
      load();
    });
  }

  // ---- duty officer console: new-alarm cue, title flash, notifications, filters, keyboard (issue 15) ----
  const consoleEl = document.getElementById("console");
  let known = null; // alert id → repeat count seen so far (null until the first queue is read)
  const fresh = new Set(); // new alerts still highlighted (until acknowledged or opened)
  let selectedId = null;
  let mutedUntil = 0;
  let audio = null;
  let flashTimer = null;
  const baseTitle = document.title;

  function cue() {
    if (now() < mutedUntil) return false;
    try {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return false;
      audio = audio || new Ctx();
      if (audio.state === "suspended") audio.resume().catch(() => {});
      const t0 = audio.currentTime;
      [0, 0.28, 0.56].forEach((d, i) => {
        const osc = audio.createOscillator(), gain = audio.createGain();
        osc.type = "square";
        osc.frequency.value = i % 2 ? 660 : 880;
        gain.gain.setValueAtTime(0.0001, t0 + d);
        gain.gain.exponentialRampToValueAtTime(0.25, t0 + d + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, t0 + d + 0.22);
        osc.connect(gain).connect(audio.destination);
        osc.start(t0 + d);
        osc.stop(t0 + d + 0.24);
      });
      body.dataset.cues = String(Number(body.dataset.cues || 0) + 1);
      const hint = document.getElementById("sound-hint");
      if (hint) hint.hidden = audio.state !== "suspended";
      return true;
    } catch (e) { return false; }
  }
  // Browsers start audio suspended until the page is touched: the first click or key enables the cue.
  const unlock = () => { if (audio && audio.state === "suspended") audio.resume().then(() => { const h = document.getElementById("sound-hint"); if (h) h.hidden = true; }).catch(() => {}); };
  document.addEventListener("click", unlock);
  document.addEventListener("keydown", unlock);

  function flashTitle(label) {
    if (!document.hidden) return;
    const prefix = consoleEl ? consoleEl.dataset.cueTitle : "";
    let on = false;
    clearInterval(flashTimer);
    const step = () => { on = !on; document.title = on ? `${prefix}${label}` : baseTitle; };
    step();
    flashTimer = setInterval(step, 1000);
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) { clearInterval(flashTimer); flashTimer = null; document.title = baseTitle; }
  });

  function notify(label, id) {
    if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
    try {
      const n = new Notification(`${consoleEl.dataset.cueTitle}${label}`, { tag: `alert-${id}`, requireInteraction: true });
      n.onclick = () => { window.focus(); openAlert(id); n.close(); };
    } catch (e) { /* some browsers only allow notifications from a service worker */ }
  }

  function items(visibleOnly) {
    return Array.from(document.querySelectorAll("#queue .q-item")).filter((el) => !visibleOnly || !el.hidden);
  }
  // The selected row is always the alert shown in the detail pane, so what the eye sees in the queue, the 接单
  // button and the A key are the same alert. ``pendingId`` is an alert asked for but not shown yet.
  let pendingId = null;
  const waiting = []; // open life-safety alerts that arrived while the officer worked on another one (newest first)
  function shownId() {
    const d = document.querySelector("#detail [data-alert]");
    return d ? d.dataset.alert : null;
  }
  function row(id) { return id ? document.querySelector(`#queue .q-item[data-alert="${id}"]`) : null; }
  function openLifeSafety(el) { return !!el && el.dataset.life === "1" && el.dataset.state === "open"; }
  function openAlert(id, auto) {
    pendingId = String(id);
    if (!auto) fresh.delete(pendingId); // opened by the console itself: it stays highlighted as new
    window.htmx.ajax("GET", `/console/alerts/${id}`, { source: "#detail", target: "#detail", swap: "innerHTML" });
    mark();
  }
  function showWaiting() {
    const box = document.getElementById("newer-waiting");
    if (!box) return;
    const shown = shownId();
    for (let i = waiting.length - 1; i >= 0; i -= 1) {
      if (waiting[i] === shown || !openLifeSafety(row(waiting[i]))) waiting.splice(i, 1);
    }
    box.hidden = waiting.length === 0;
    if (!waiting.length) return;
    waiting.sort((a, b) => Number(row(b).dataset.raised) - Number(row(a).dataset.raised));
    const el = row(waiting[0]);
    const text = document.getElementById("newer-waiting-text");
    if (text) {
      const more = waiting.length > 1 ? box.dataset.more.replace("{n}", String(waiting.length - 1)) : "";
      text.textContent = box.dataset.text.replace("{label}", el.dataset.label) + more;
    }
    const link = document.getElementById("newer-waiting-link");
    if (link) { link.dataset.alert = waiting[0]; link.href = `#alert-${waiting[0]}`; }
  }
  function mark() {
    selectedId = shownId();
    items(false).forEach((el) => {
      if (el.dataset.state !== "open") fresh.delete(el.dataset.alert);
      el.classList.toggle("is-new", fresh.has(el.dataset.alert));
      el.classList.toggle("selected", el.dataset.alert === selectedId);
      el.classList.toggle("opening", el.dataset.alert === pendingId && pendingId !== selectedId);
    });
    showWaiting();
  }
  function applyFilters() {
    const q = (document.getElementById("q-search") || {}).value || "";
    const want = {
      type: (document.getElementById("f-type") || {}).value || "",
      severity: (document.getElementById("f-severity") || {}).value || "",
      state: (document.getElementById("f-state") || {}).value || "",
      community: (document.getElementById("f-community") || {}).value || "",
    };
    const words = q.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    const all = items(false);
    all.forEach((el) => {
      const ok = Object.entries(want).every(([k, v]) => !v || el.dataset[k] === v) && words.every((w) => (el.dataset.search || "").includes(w));
      el.hidden = !ok;
      shown += ok ? 1 : 0;
    });
    const note = document.getElementById("shown-note");
    if (note) { note.hidden = shown === all.length; const c = document.getElementById("shown-count"); if (c) c.textContent = String(shown); }
  }
  function ackFlags() {
    let overdue = 0;
    document.querySelectorAll("#queue .ack-flag[data-ack-due]").forEach((el) => {
      const late = now() > Number(el.dataset.ackDue);
      el.hidden = !late;
      const li = el.closest(".q-item");
      if (li) li.classList.toggle("ack-overdue", late);
      overdue += late ? 1 : 0;
    });
    const c = document.getElementById("overdue-count");
    if (c) { c.textContent = String(overdue); c.parentElement.classList.toggle("some", overdue > 0); }
  }
  function writingInDetail() {
    // Something the officer entered in the detail that opening another alert would throw away.
    const d = document.getElementById("detail");
    if (!d) return false;
    const f = document.activeElement;
    if (f && d.contains(f) && ["INPUT", "TEXTAREA"].includes(f.tagName)) return true;
    const typed = Array.from(d.querySelectorAll("textarea, input[type=text]")).some((el) => el.value !== el.defaultValue);
    const chosen = Array.from(d.querySelectorAll("select[name=outcome]")).some((el) => el.value);
    return typed || chosen;
  }
  function onQueue() {
    const els = items(false);
    const ids = new Map(els.map((el) => [el.dataset.alert, Number(el.dataset.count || 1)]));
    if (known !== null) {
      const arrived = els.filter((el) => !known.has(el.dataset.alert));
      arrived.forEach((el) => fresh.add(el.dataset.alert));
      // The elder pressed again while the alert was open: as urgent as a new one.
      const repeated = els.filter((el) => known.has(el.dataset.alert) && ids.get(el.dataset.alert) > known.get(el.dataset.alert));
      repeated.forEach((el) => { if (el.dataset.life === "1") fresh.add(el.dataset.alert); });
      const life = arrived.filter((el) => el.dataset.state === "open").concat(repeated).filter((el) => el.dataset.life === "1");
      if (life.length) {
        if (cue()) body.dataset.cueFor = life.map((el) => el.dataset.alert).join(",");
        flashTitle(life[0].dataset.label);
        life.forEach((el) => notify(el.dataset.label, el.dataset.alert));
      }
      const shown = shownId();
      const urgent = arrived.filter(openLifeSafety);
      if (urgent.length) {
        // The newest arrival (the queue puts the longest-waiting first among equals).
        const newest = urgent.reduce((a, b) => (Number(b.dataset.raised) > Number(a.dataset.raised) ? b : a));
        if (shown && (openLifeSafety(row(shown)) || writingInDetail())) {
          // The officer is on another unacknowledged life-safety alert, or is writing in the detail (an outcome
          // chosen, a note typed): keep it, say a newer one is waiting.
          urgent.forEach((el) => { if (!waiting.includes(el.dataset.alert)) waiting.push(el.dataset.alert); });
        } else {
          openAlert(newest.dataset.alert, true);
        }
      } else if (arrived.length && !shown && !pendingId) {
        openAlert(els[0].dataset.alert, true);
      }
    }
    known = ids;
    mark();
    applyFilters();
    ackFlags();
  }
  function consoleSetup() {
    if (!consoleEl) return;
    onQueue();
    document.addEventListener("ec:queue", onQueue);
    setInterval(ackFlags, 1000);
    // An open life-safety alert nobody has acknowledged sounds again every 15 s (unless muted for the minute).
    setInterval(() => {
      if (items(false).some((el) => el.dataset.life === "1" && el.dataset.state === "open")) cue();
    }, 15000);
    const filters = document.getElementById("queue-filters");
    if (filters) {
      filters.addEventListener("input", applyFilters);
      filters.addEventListener("change", applyFilters);
      filters.addEventListener("submit", (e) => e.preventDefault());
    }
    const mute = document.getElementById("mute");
    if (mute) {
      mute.addEventListener("click", () => { mutedUntil = now() + 60000; body.dataset.muted = "1"; });
      setInterval(() => {
        const left = Math.ceil((mutedUntil - now()) / 1000);
        if (left > 0) { mute.textContent = mute.dataset.muted.replace("{s}", String(left)); mute.classList.add("on"); }
        else { mute.textContent = mute.dataset.label; mute.classList.remove("on"); delete body.dataset.muted; }
      }, 500);
    }
    const perm = document.getElementById("notify-perm");
    if (perm && "Notification" in window && Notification.permission === "default") {
      perm.hidden = false;
      perm.addEventListener("click", () => Notification.requestPermission().then(() => { perm.hidden = true; }));
    }
    document.getElementById("queue").addEventListener("click", (e) => {
      const li = e.target.closest(".q-item");
      if (li) { pendingId = li.dataset.alert; fresh.delete(pendingId); mark(); } // its hx-get loads the detail
    });
    const link = document.getElementById("newer-waiting-link");
    if (link) link.addEventListener("click", (e) => { e.preventDefault(); if (link.dataset.alert) openAlert(link.dataset.alert); });
    // After any swap (the first detail loaded by hx-trigger="load" included) the selected row follows the detail.
    const follow = () => {
      if (pendingId === shownId()) pendingId = null;
      mark();
    };
    document.addEventListener("htmx:afterSwap", follow);
    document.addEventListener("htmx:afterSettle", follow);
    document.addEventListener("htmx:afterRequest", (e) => {
      // A detail that failed to load (gone, out of scope) leaves the pane as it was, and nothing pending.
      if (e.detail && !e.detail.successful) { pendingId = null; mark(); }
    });
    document.addEventListener("keydown", (e) => {
      const tag = (e.target.tagName || "").toLowerCase();
      if (["input", "textarea", "select"].includes(tag) || e.ctrlKey || e.metaKey || e.altKey) {
        if (e.key === "Escape") e.target.blur();
        return;
      }
      const list = items(true);
      const current = pendingId || shownId(); // read now: the detail may have been swapped but not settled yet
      let idx = list.findIndex((el) => el.dataset.alert === current);
      if (e.key === "j" || e.key === "k") {
        // Moving opens the alert, so the row selected is always the alert in the detail (and what A acts on).
        e.preventDefault();
        if (!list.length) return;
        idx = e.key === "j" ? Math.min(list.length - 1, idx + 1) : Math.max(0, idx < 0 ? 0 : idx - 1);
        list[idx].focus();
        if (list[idx].dataset.alert !== current) openAlert(list[idx].dataset.alert);
      } else if (e.key === "Enter") {
        if (["button", "a", "summary"].includes(tag)) return; // Enter keeps activating the focused control
        const li = e.target.closest ? e.target.closest(".q-item") : null;
        const target = li || list[idx];
        if (target) { e.preventDefault(); openAlert(target.dataset.alert); }
      } else if (e.key === "a") {
        // Only the alert shown in the detail, and only once what was asked for is shown (never a stale one).
        const id = shownId();
        if (!id || (pendingId && pendingId !== id)) return;
        e.preventDefault();
        fresh.delete(String(id));
        // Its own source: sent now, never queued behind a detail load where a later load would replace it (htmx keeps
        // only the last request queued on an element, so the acknowledgement could be dropped).
        window.htmx.ajax("POST", `/console/alerts/${id}/act`, { source: consoleEl, target: "#detail", swap: "innerHTML", values: { action: "acknowledge", csrf: body.dataset.csrf || "" } });
      } else if (e.key === "/") {
        const search = document.getElementById("q-search");
        if (search) { e.preventDefault(); search.focus(); }
      }
    });
  }

  async function drawChart(el, range) {
    if (!window.echarts) return;
    // A blank chart says why: no telemetry store (or a failed query), or nothing arrived in the range.
    const note = document.getElementById(`${el.id}-empty`);
    const empty = (why) => {
      if (note) { note.textContent = note.dataset[why]; note.hidden = false; }
      el.hidden = true;
    };
    const res = await fetch(`${el.dataset.series}?range=${range}`, { credentials: "same-origin" });
    if (!res.ok) { empty("unavailable"); el.dataset.state = String(res.status); return; }
    const data = await res.json();
    if (!data.series.some((s) => (s.points || []).some((p) => p[1] !== null))) { empty("empty"); el.dataset.state = "empty"; return; }
    if (note) note.hidden = true;
    el.hidden = false;
    const chart = window.echarts.getInstanceByDom(el) || window.echarts.init(el);
    // The band's caption is drawn once (on the first banded series of the top grid), on a light background, so
    // it stays legible over the line instead of being overdrawn per series.
    const captioned = data.series.findIndex((s) => s.band && s.axis === 0);
    const series = data.series.map((s, i) => ({
      name: s.name, type: s.bar ? "bar" : "line", step: s.step ? "end" : undefined, showSymbol: false,
      xAxisIndex: s.axis, yAxisIndex: s.axis, data: s.points, connectNulls: false,
      areaStyle: s.step ? { opacity: 0.25 } : undefined,
      markArea: s.band ? { silent: true, itemStyle: { opacity: 0.12 }, label: { show: i === captioned, formatter: data.baseline.personal ? el.dataset.baseline : el.dataset.floor, position: "insideTopRight",
          color: "#37474f", fontSize: 12, textBorderWidth: 0, backgroundColor: "rgba(255,255,255,0.9)", padding: [2, 6], borderRadius: 3 },
        data: [[{ yAxis: s.band[0] }, { yAxis: s.band[1] }]] } : undefined,
    }));
    const grids = [{ left: 48, right: 24, top: 36, height: "38%" }, { left: 48, right: 24, top: "56%", height: "8%" }, { left: 48, right: 24, top: "70%", height: "20%" }];
    const x = (i) => ({ type: "time", gridIndex: i, min: data.start_ms, max: data.end_ms, axisLabel: { show: i === 2 } });
    chart.setOption({ animation: false, tooltip: { trigger: "axis" }, legend: { top: 0 }, grid: grids, xAxis: [x(0), x(1), x(2)],
      yAxis: [{ type: "value", gridIndex: 0, scale: true }, { type: "value", gridIndex: 1, min: 0, max: 1, show: false }, { type: "value", gridIndex: 2 }],
      series }, true);
    el.dataset.state = "ready";
  }

  function charts() {
    document.querySelectorAll(".chart[data-series]").forEach((el) => {
      drawChart(el, "24h");
      const card = el.closest(".card");
      if (!card) return;
      card.querySelectorAll("[data-range]").forEach((btn) => btn.addEventListener("click", () => {
        card.querySelectorAll("[data-range]").forEach((b) => b.classList.toggle("on", b === btn));
        drawChart(el, btn.dataset.range);
      }));
    });
  }

  document.addEventListener("DOMContentLoaded", () => { startStream(); charts(); consoleSetup(); });
})();
