// 监测大屏: polls /bigscreen/data and redraws the numbers and three ECharts charts. No inline scripts (CSP).
(function () {
  "use strict";
  const root = document.getElementById("big");
  if (!root) return;
  const COLORS = { open: "#ff5252", acknowledged: "#ffb74d", en_route: "#ba68c8", on_site: "#4fc3f7" };
  const text = { color: "#e8eef5", fontSize: 18 };
  const charts = {};
  function chart(id) {
    const el = document.getElementById(id);
    if (!el || !window.echarts) return null;
    charts[id] = charts[id] || window.echarts.init(el, null, { renderer: "canvas" });
    return charts[id];
  }
  function set(id, value) { const el = document.getElementById(id); if (el) el.textContent = value; }
  // A tile with nothing to count says why in words (its data-empty), not with a dash that reads as "no data".
  function tile(id, value, none) {
    const el = document.getElementById(id);
    if (!el) return;
    el.classList.toggle("empty", none);
    el.textContent = none ? el.dataset.empty : value;
  }
  function draw(d) {
    set("big-active", d.active);
    set("big-unacked", d.unacknowledged);
    set("big-today", d.today);
    // Medians formatted by the server, as on the statistics page; "-" when nothing was handled today.
    tile("big-ack", d.ack_p50, d.ack_p50 === "-");
    tile("big-onsite", d.on_site_p50, d.on_site_p50 === "-");
    set("big-visits", d.visits_total ? `${Math.round((100 * d.visits_done) / d.visits_total)}%` : "—");
    // No device registered in the area (e.g. homes imported from a CSV, which lists none).
    const none = d.devices_registered === 0;
    tile("big-online", none ? "" : `${(100 * d.device_online_rate).toFixed(1)}%`, none);
    set("big-online-of", none ? "" : `${d.devices_reachable} / ${d.devices_registered}`);
    const unseen = document.getElementById("big-unseen");
    if (unseen) unseen.textContent = d.devices.unseen ? `${unseen.dataset.label} ${d.devices.unseen}` : "";
    set("big-updated", d.updated);
    root.dataset.state = "ready";
    root.dataset.active = String(d.active);
    const s = chart("chart-state");
    if (s) s.setOption({ animation: false, textStyle: text, tooltip: {}, series: [{ type: "pie", radius: ["40%", "70%"],
      label: { color: "#e8eef5", fontSize: 20, formatter: "{b}\n{c}" },
      data: d.by_state.filter((x) => x.value > 0).map((x) => ({ name: x.name, value: x.value, itemStyle: { color: COLORS[x.state] } })) }] }, true);
    const c = chart("chart-community");
    if (c) c.setOption({ animation: false, textStyle: text, grid: { left: 140, right: 30, top: 10, bottom: 30 },
      xAxis: { type: "value", minInterval: 1, axisLabel: text }, yAxis: { type: "category", inverse: true, data: d.by_community.map((x) => x.name), axisLabel: text },
      series: [{ type: "bar", data: d.by_community.map((x) => x.value), itemStyle: { color: "#ff8a65" }, label: { show: true, position: "right", color: "#fff", fontSize: 18 } }] }, true);
    const h = chart("chart-hourly");
    if (h) h.setOption({ animation: false, textStyle: text, grid: { left: 50, right: 20, top: 10, bottom: 30 },
      xAxis: { type: "category", data: [...Array(24).keys()].map(String), axisLabel: text }, yAxis: { type: "value", minInterval: 1, axisLabel: text },
      series: [{ type: "bar", data: d.today_by_hour, itemStyle: { color: "#4fc3f7" } }] }, true);
  }
  async function refresh() {
    try {
      const res = await fetch(root.dataset.src, { credentials: "same-origin" });
      if (res.ok) draw(await res.json());
      else root.dataset.state = String(res.status);
    } catch (e) { root.dataset.state = "error"; }
  }
  refresh();
  setInterval(refresh, Number(root.dataset.every || 5000));
  window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.resize()));
})();
