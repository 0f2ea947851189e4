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

  async function drawChart(el, range) {
    if (!window.echarts) return;
    const res = await fetch(`${el.dataset.series}?range=${range}`, { credentials: "same-origin" });
    if (!res.ok) { el.textContent = "—"; el.dataset.state = String(res.status); return; }
    const data = await res.json();
    const chart = window.echarts.getInstanceByDom(el) || window.echarts.init(el);
    const series = data.series.map((s) => ({
      name: s.name, type: s.bar ? "bar" : "line", step: s.step ? "end" : undefined, showSymbol: false,
      xAxisIndex: s.axis, yAxisIndex: s.axis, data: s.points, connectNulls: false,
      areaStyle: s.step ? { opacity: 0.25 } : undefined,
      markArea: s.band ? { silent: true, itemStyle: { opacity: 0.12 }, label: { show: s.axis === 0 && s.name === data.series[0].name, formatter: data.baseline.personal ? el.dataset.baseline : el.dataset.floor, position: "insideTopLeft" },
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

  document.addEventListener("DOMContentLoaded", () => { startStream(); charts(); });
})();
