/* OfficeFlow dashboard: draws the figures of GET /api/v1/dashboard as SVG charts (no library: the page's
 * Content-Security-Policy allows scripts from this package only).
 *
 * - Text from the API reaches the page through textContent / text nodes only.
 * - Colours come from classes (admin.css: .s-<series>); the CSP forbids inline styles.
 * - Each bar has a <title> (the browser's tooltip) with its day, series and count.
 */
"use strict";

(() => {
  const body = document.body;
  if (body.dataset.page !== "dashboard" || document.querySelector("[data-testid=forbidden], [data-testid=enrol-first]")) {
    return;
  }
  const API = body.dataset.api;
  const SVG = "http://www.w3.org/2000/svg";
  const H = 220; // px: charts are drawn at the width of their card, in CSS pixels (text stays 11-12 px)
  const M = { top: 12, right: 12, bottom: 28, left: 40 };

  const LABELS = {
    success: "Succeeded", failed: "Failed", running: "Running", queued: "Queued",
    triggered: "Started a run", ignored: "Ignored", rejected: "Rejected", dead: "Dead-lettered", pending: "Pending",
    delivered: "Delivered", bounced: "Bounced", complained: "Complained", suppressed: "Suppressed",
    sent: "Sent (no report yet)", sending: "Sending", answered: "Answered", waiting: "Still waiting",
    p50: "Median", p95: "95th percentile",
  };
  const label = (key) => LABELS[key] || key;

  // --- helpers -------------------------------------------------------------------------------------------

  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, String(value));
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function s(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(key, String(value));
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function tip(text) {
    const title = s("title");
    title.textContent = text;
    return title;
  }

  function svgText(attrs, text) {
    const node = s("text", attrs);
    node.textContent = text;
    return node;
  }

  const number = (n) => Number(n).toLocaleString("en-US");

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 60) return `${Math.round(seconds)} s`;
    if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
    if (seconds < 86400) return `${(seconds / 3600).toFixed(seconds < 36000 ? 1 : 0)} h`;
    return `${(seconds / 86400).toFixed(1)} days`;
  }

  /** A round upper bound for an axis (1, 2, 5 × 10^n) and its ticks. */
  function scale(max) {
    if (max <= 0) return { top: 1, ticks: [0, 1] };
    const step = 10 ** Math.floor(Math.log10(max));
    const top = [1, 2, 5, 10].map((f) => f * step).find((v) => v >= max);
    return { top, ticks: [0, top / 2, top].filter((t) => Number.isInteger(t)) };
  }

  const shortDay = (iso) => iso.slice(5); // MM-DD

  function legend(box, keys, values) {
    box.replaceChildren(...keys.map((key) => h("span", { class: "legend-item" },
      h("span", { class: `swatch s-${key}` }), h("span", { text: label(key) }),
      values ? h("span", { class: "muted", text: ` ${number(values[key] || 0)}` }) : null)));
  }

  function chart(id) {
    const root = document.getElementById(id);
    const parts = {
      root,
      legend: root.querySelector("[data-chart=legend]"),
      plot: root.querySelector("[data-chart=plot]"),
      empty: root.querySelector("[data-chart=empty]"),
    };
    parts.show = (hasData, emptyText) => {
      parts.empty.hidden = hasData;
      parts.empty.textContent = hasData ? "" : emptyText;
      parts.plot.hidden = !hasData;
      parts.legend.hidden = !hasData;
      root.classList.toggle("is-empty", !hasData);
      if (!hasData) parts.plot.replaceChildren();
    };
    return parts;
  }

  // --- charts --------------------------------------------------------------------------------------------

  const widthOf = (parts) => Math.max(320, Math.floor(parts.plot.clientWidth || 640));

  /** Stacked bars per day: ``series`` = {key: [count per day]}, drawn in ``keys`` order from the bottom. */
  function stackedBars(parts, days, series, keys, what) {
    const W = widthOf(parts);
    const shown = keys.filter((k) => (series[k] || []).some((v) => v > 0));
    const sums = days.map((_, i) => shown.reduce((t, k) => t + series[k][i], 0));
    const { top, ticks } = scale(Math.max(0, ...sums));
    const innerW = W - M.left - M.right;
    const innerH = H - M.top - M.bottom;
    const slot = innerW / days.length;
    const barW = Math.max(1, Math.min(28, slot * 0.72));
    const y = (v) => M.top + innerH - (v / top) * innerH;
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "plot-svg", role: "img",
      "aria-label": `${what} per day, ${days[0]} to ${days[days.length - 1]}` });
    for (const t of ticks) {
      svg.append(s("line", { x1: M.left, x2: W - M.right, y1: y(t), y2: y(t), class: "grid-line" }),
        svgText({ x: M.left - 6, y: y(t) + 4, class: "axis-label", "text-anchor": "end" }, number(t)));
    }
    const every = Math.ceil(days.length / 10);
    days.forEach((day, i) => {
      const x = M.left + i * slot + (slot - barW) / 2;
      let base = 0;
      const group = s("g", { class: "bar", "data-day": day });
      for (const key of shown) {
        const value = series[key][i];
        if (!value) continue;
        group.append(s("rect", { x, y: y(base + value), width: barW, height: Math.max(0.5, y(base) - y(base + value)),
          class: `s-${key}`, "data-series": key, "data-value": value }, tip(`${day} · ${label(key)}: ${number(value)}`)));
        base += value;
      }
      svg.append(group);
      if (i % every === 0 || i === days.length - 1) {
        svg.append(svgText({ x: M.left + i * slot + slot / 2, y: H - 8, class: "axis-label", "text-anchor": "middle" },
          shortDay(day)));
      }
    });
    parts.plot.replaceChildren(svg);
    legend(parts.legend, shown, Object.fromEntries(shown.map((k) => [k, series[k].reduce((a, b) => a + b, 0)])));
  }

  /** Horizontal bars, one row per item: the median bar, the 95th percentile as a lighter extension. */
  function rangeBars(parts, rows, what) {
    const W = widthOf(parts);
    const rowH = 30;
    const height = M.top + rows.length * rowH + 24;
    const left = 170;
    const right = 110;
    const max = Math.max(...rows.map((r) => r.p95), 1);
    const x = (v) => left + (v / max) * (W - left - right);
    const svg = s("svg", { viewBox: `0 0 ${W} ${height}`, class: "plot-svg", role: "img", "aria-label": what });
    rows.forEach((r, i) => {
      const y0 = M.top + i * rowH;
      const name = r.dag_id.length > 24 ? `${r.dag_id.slice(0, 23)}…` : r.dag_id;
      svg.append(
        svgText({ x: left - 8, y: y0 + 15, class: "row-label", "text-anchor": "end" }, name),
        s("rect", { x: left, y: y0 + 4, width: Math.max(1, x(r.p95) - left), height: 16, class: "s-p95" },
          tip(`${r.dag_id} · 95th percentile ${duration(r.p95)}`)),
        s("rect", { x: left, y: y0 + 4, width: Math.max(1, x(r.p50) - left), height: 16, class: "s-p50",
          "data-series": "p50", "data-value": r.p50 }, tip(`${r.dag_id} · median ${duration(r.p50)} (${r.count} runs)`)),
        svgText({ x: x(r.p95) + 6, y: y0 + 16, class: "row-value" }, `${duration(r.p50)} · ${duration(r.p95)}`));
    });
    svg.append(svgText({ x: left, y: height - 6, class: "axis-label" }, "0"),
      svgText({ x: W - right, y: height - 6, class: "axis-label", "text-anchor": "end" }, duration(max)));
    parts.plot.replaceChildren(svg);
    legend(parts.legend, ["p50", "p95"]);
  }

  /** Vertical stacked bars over named buckets (approval waits). */
  function bucketBars(parts, buckets, keys) {
    const W = widthOf(parts);
    const sums = buckets.map((b) => keys.reduce((t, k) => t + b[k], 0));
    const { top, ticks } = scale(Math.max(0, ...sums));
    const innerW = W - M.left - M.right;
    const innerH = H - M.top - M.bottom;
    const slot = innerW / buckets.length;
    const barW = slot * 0.6;
    const y = (v) => M.top + innerH - (v / top) * innerH;
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "plot-svg", role: "img", "aria-label": "Approvals by wait" });
    for (const t of ticks) {
      svg.append(s("line", { x1: M.left, x2: W - M.right, y1: y(t), y2: y(t), class: "grid-line" }),
        svgText({ x: M.left - 6, y: y(t) + 4, class: "axis-label", "text-anchor": "end" }, number(t)));
    }
    buckets.forEach((b, i) => {
      const x = M.left + i * slot + (slot - barW) / 2;
      let base = 0;
      for (const key of keys) {
        if (!b[key]) continue;
        svg.append(s("rect", { x, y: y(base + b[key]), width: barW, height: y(base) - y(base + b[key]),
          class: `s-${key}`, "data-series": key, "data-value": b[key] }, tip(`${b.label} · ${label(key)}: ${b[key]}`)));
        base += b[key];
      }
      svg.append(svgText({ x: x + barW / 2, y: H - 8, class: "axis-label", "text-anchor": "middle" }, b.label));
    });
    parts.plot.replaceChildren(svg);
    const totals = Object.fromEntries(keys.map((k) => [k, buckets.reduce((t, b) => t + b[k], 0)]));
    legend(parts.legend, keys, totals);
  }

  /** A small stacked bar per day, for a table row (the workflow's runs at a glance). */
  function sparkline(days, series, keys) {
    const width = 8 * days.length > 240 ? 240 : 8 * days.length;
    const height = 26;
    const slot = width / days.length;
    const sums = days.map((_, i) => keys.reduce((t, k) => t + ((series[k] || [])[i] || 0), 0));
    const top = Math.max(1, ...sums);
    const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "spark", "aria-hidden": "true" });
    days.forEach((day, i) => {
      let base = 0;
      for (const key of keys) {
        const value = (series[key] || [])[i] || 0;
        if (!value) continue;
        const h0 = (base / top) * height;
        const h1 = ((base + value) / top) * height;
        svg.append(s("rect", { x: i * slot + slot * 0.12, y: height - h1, width: Math.max(0.8, slot * 0.76),
          height: Math.max(0.5, h1 - h0), class: `s-${key}` }, tip(`${day} · ${label(key)}: ${value}`)));
        base += value;
      }
    });
    return svg;
  }

  // --- the page ------------------------------------------------------------------------------------------

  const charts = {
    runs: chart("chart-runs"), lead: chart("chart-lead"), webhooks: chart("chart-webhooks"),
    approvals: chart("chart-approvals"), email: chart("chart-email"),
  };
  const workflowSelect = document.querySelector("#chart-runs [data-chart=workflow]");
  const period = document.getElementById("period");
  let data = null;

  function kpi(name, value, note) {
    const box = document.querySelector(`[data-kpi=${name}]`);
    box.querySelector("[data-kpi-value]").textContent = value;
    box.querySelector("[data-kpi-note]").textContent = note || "";
  }

  const inPeriod = () => `in the last ${data.days} days`;

  function drawRuns() {
    const chosen = workflowSelect.value;
    const workflow = data.runs.workflows.find((w) => w.dag_id === chosen);
    const series = workflow ? workflow.series : data.runs.all;
    const any = Object.values(series).some((values) => values.some((v) => v > 0));
    charts.runs.show(any, `No workflow runs ${inPeriod()}${chosen ? ` for ${chosen}` : ""}.`);
    if (any) stackedBars(charts.runs, data.day_labels, series, data.runs.states, "Workflow runs");
  }

  function render() {
    const runs = data.runs;
    const totalRuns = Object.values(runs.totals).reduce((a, b) => a + b, 0);
    kpi("runs", number(totalRuns), runs.success_rate === null ? "none finished" : `${runs.success_rate}% succeeded`);
    const previous = workflowSelect.value;
    workflowSelect.replaceChildren(h("option", { value: "", text: "All workflows" }),
      ...runs.workflows.map((w) => h("option", { value: w.dag_id, text: w.dag_id })));
    workflowSelect.value = runs.workflows.some((w) => w.dag_id === previous) ? previous : "";
    drawRuns();
    const table = document.querySelector("#chart-runs [data-chart=table]");
    table.hidden = runs.workflows.length === 0;
    table.querySelector("tbody").replaceChildren(...runs.workflows.map((w) => {
      const total = Object.values(w.totals).reduce((a, b) => a + b, 0);
      const finished = (w.totals.success || 0) + (w.totals.failed || 0);
      return h("tr", { "data-workflow": w.dag_id },
        h("td", {}, h("button", { type: "button", class: "link mono", "data-select": w.dag_id, text: w.dag_id })),
        h("td", {}, sparkline(data.day_labels, w.series, runs.states)),
        h("td", { class: "right", text: number(total) }),
        h("td", { class: "right", text: number(w.totals.failed || 0) }),
        h("td", { class: "right", text: finished ? `${Math.round((1000 * (w.totals.success || 0)) / finished) / 10}%` : "—" }));
    }));

    const lead = data.lead_time;
    kpi("lead", lead.overall.count ? duration(lead.overall.p50) : "—",
      lead.overall.count ? `p95 ${duration(lead.overall.p95)} · ${lead.overall.count} runs` : "no finished run yet");
    const leadRows = lead.workflows.filter((w) => w.count > 0);
    charts.lead.show(leadRows.length > 0, `No webhook event led to a finished run ${inPeriod()}.`);
    if (leadRows.length) rangeBars(charts.lead, leadRows, "Lead time per workflow");

    const hooks = data.webhooks;
    const totalEvents = Object.values(hooks.totals).reduce((a, b) => a + b, 0);
    const dead = hooks.totals.dead || 0;
    kpi("webhooks", number(totalEvents), totalEvents ? `${dead} dead-lettered` : "none received");
    charts.webhooks.show(totalEvents > 0, `No webhook events ${inPeriod()}.`);
    if (totalEvents) stackedBars(charts.webhooks, data.day_labels, hooks.series, hooks.outcomes, "Webhook events");

    const approvals = data.approvals;
    kpi("approvals", number(approvals.waiting), approvals.oldest_waiting_seconds === null
      ? `${approvals.answered.count} answered, median ${duration(approvals.answered.p50)}`
      : `oldest waits ${duration(approvals.oldest_waiting_seconds)}`);
    const anyApproval = approvals.answered.count + approvals.waiting > 0;
    charts.approvals.show(anyApproval, `No approvals asked ${inPeriod()}, none waiting.`);
    if (anyApproval) bucketBars(charts.approvals, approvals.buckets, ["answered", "waiting"]);

    const email = data.email;
    kpi("email", email.delivery_rate === null ? "—" : `${email.delivery_rate}%`,
      email.bounce_rate === null ? "no email sent" : `${email.bounce_rate}% bounced · ${number(email.accepted)} sent`);
    const totalEmail = Object.values(email.totals).reduce((a, b) => a + b, 0);
    charts.email.show(totalEmail > 0, `No emails sent ${inPeriod()}.`);
    if (totalEmail) stackedBars(charts.email, data.day_labels, email.series, email.statuses, "Email deliveries");

    const scope = data.organizations === null ? "every organization" : `organizations ${data.organizations.join(", ") || "(none)"}`;
    document.getElementById("scope").textContent =
      `${data.day_labels[0]} to ${data.day_labels[data.day_labels.length - 1]} (UTC) · ${scope}`;
    body.dataset.loaded = String(data.days);
  }

  function showError(message) {
    const box = document.getElementById("notice");
    box.hidden = false;
    box.className = "notice notice-error";
    box.setAttribute("role", "alert");
    box.replaceChildren(h("span", { text: message }));
  }

  let calls = 0;
  async function load(days) {
    const call = ++calls;
    delete body.dataset.loaded;
    for (const button of period.querySelectorAll("[data-days]")) {
      button.setAttribute("aria-pressed", String(button.dataset.days === String(days)));
    }
    let response;
    try {
      response = await fetch(`${API}/dashboard?days=${days}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
    } catch (err) {
      showError("OfficeFlow can't be reached; check your connection and try again.");
      return;
    }
    const payload = await response.json().catch(() => null);
    if (call !== calls) return; // a newer period was asked for meanwhile
    if (!response.ok) {
      const error = (payload && payload.error) || {};
      showError(response.status === 401 ? "Your session has expired: reload the page to sign in again."
        : error.message || `${response.status} ${response.statusText}`);
      return;
    }
    document.getElementById("notice").hidden = true;
    data = payload;
    render();
  }

  period.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-days]");
    if (!button) return;
    const days = Number(button.dataset.days);
    history.replaceState(null, "", `${window.location.pathname}?days=${days}`);
    load(days);
  });
  workflowSelect.addEventListener("change", () => { if (data) drawRuns(); });
  document.querySelector("#chart-runs [data-chart=table]").addEventListener("click", (event) => {
    const button = event.target.closest("[data-select]");
    if (!button || !data) return;
    workflowSelect.value = button.dataset.select;
    drawRuns();
    document.getElementById("chart-runs").scrollIntoView({ block: "nearest" });
  });
  let resizing = null;
  let lastWidth = window.innerWidth;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      if (data && window.innerWidth !== lastWidth) render();
      lastWidth = window.innerWidth;
    }, 150);
  });
  load(Number(period.dataset.period));
})();
