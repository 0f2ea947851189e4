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
    const queue = document.getElementById("queue");
    if (!queue || !window.EventSource) return;
    const live = document.getElementById("live");
    const es = new EventSource(queue.dataset.stream);
    let version = null;
    es.addEventListener("open", () => { if (live) { live.textContent = live.dataset.ok; live.className = "live ok"; } });
    es.addEventListener("error", () => { if (live) { live.textContent = live.dataset.lost; live.className = "live lost"; } });
    es.addEventListener("alerts", (ev) => {
      const data = JSON.parse(ev.data);
      if (data.version === version) return;
      version = data.version;
      if (live) { live.textContent = live.dataset.ok; live.className = "live ok"; }
      window.htmx.ajax("GET", queue.dataset.fragment, { target: "#queue", swap: "innerHTML" }).then(() => {
        queue.dataset.version = String(version);
        const detail = document.querySelector("#detail [data-alert]");
        if (detail) {
          const id = detail.dataset.alert;
          const item = document.querySelector(`#queue [data-alert="${id}"]`);
          if (item && item.dataset.state !== detail.dataset.state) {
            window.htmx.ajax("GET", `/console/alerts/${id}`, { target: "#detail", swap: "innerHTML" });
          }
        }
      });
    });
  }

  function charts() {
    document.querySelectorAll(".chart[data-series]").forEach(async (el) => {
      if (!window.echarts) return;
      const res = await fetch(el.dataset.series, { credentials: "same-origin" });
      if (!res.ok) { el.textContent = "—"; return; }
      const data = await res.json();
      const chart = window.echarts.init(el);
      const series = data.series.map((s) => ({ name: s.name, type: s.step ? "line" : "line", step: s.step ? "end" : undefined,
        showSymbol: false, yAxisIndex: s.axis || 0, data: s.points, markArea: s.band ? { silent: true, itemStyle: { opacity: 0.12 },
        data: [[{ yAxis: s.band[0] }, { yAxis: s.band[1] }]] } : undefined }));
      chart.setOption({ tooltip: { trigger: "axis" }, legend: {}, grid: { left: 40, right: 40, top: 40, bottom: 30 },
        xAxis: { type: "time" }, yAxis: [{ type: "value" }, { type: "value", max: 1, min: 0 }], series });
    });
  }

  document.addEventListener("DOMContentLoaded", () => { startStream(); charts(); });
})();
