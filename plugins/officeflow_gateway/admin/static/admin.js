/* OfficeFlow admin views: load data from the JSON APIs and wire the buttons the server rendered.
 *
 * - Requests are same-origin fetches authenticated by Airflow's httponly cookie; no token is ever read or
 *   stored here. Every change is sent as JSON (a cross-site form can't send that content type).
 * - Text from the APIs only ever reaches the page through textContent / text nodes (never innerHTML).
 * - Action buttons come from <template> elements the server rendered only for users allowed to use them.
 */
"use strict";

(() => {
  const body = document.body;
  const API = body.dataset.api;

  if (window.self !== window.top) body.classList.add("framed"); // inside the Airflow UI: its nav replaces ours

  // --- helpers -------------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message, code) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, payload) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") {
      init.headers["Content-Type"] = "application/json";
      if (method !== "DELETE" || payload !== undefined) init.body = JSON.stringify(payload ?? {});
    }
    let response;
    try {
      response = await fetch(API + path, init);
    } catch (err) {
      throw new ApiError(0, "OfficeFlow can't be reached; check your connection and try again.", "network");
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = (data && data.error) || {};
      let message = error.message || (data && typeof data.detail === "string" ? data.detail : null)
        || `${response.status} ${response.statusText}`;
      if (response.status === 401) message = "Your session has expired: reload the page to sign in again.";
      if (error.correlationId) message += ` (correlation id ${error.correlationId})`;
      throw new ApiError(response.status, message, error.code);
    }
    return data;
  }

  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const pad = (n) => String(n).padStart(2, "0");

  function when(iso) {
    if (!iso) return h("span", { class: "muted", text: "—" });
    const d = new Date(iso);
    const text = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `
      + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return h("time", { datetime: iso, title: d.toISOString(), text });
  }

  function badge(text, tone) {
    return h("span", { class: `badge badge-${tone || "neutral"}`, text });
  }

  const STATE_TONES = {
    triggered: "success", success: "success", pending: "info", ignored: "neutral", rejected: "warning",
    dead: "danger", failure: "danger", denied: "warning",
  };

  /** Run a row action, reload the table, then show the action's notice: once the notice is up the rows are
   *  the new ones (a click on a row that is being replaced would be lost). */
  async function actThenReload(action, reload) {
    let message = null;
    try {
      message = await action();
    } catch (err) {
      await reload();
      failed(err);
      return;
    }
    await reload();
    if (message) notify(message);
  }

  let noticeTimer = null;
  function notify(message, tone = "success") {
    const box = $("#notice");
    box.hidden = false;
    box.className = `notice notice-${tone}`;
    box.setAttribute("role", tone === "error" ? "alert" : "status");
    box.replaceChildren(h("span", { text: message }),
      h("button", { type: "button", class: "notice-close", "aria-label": "Dismiss", text: "×" }));
    $(".notice-close", box).addEventListener("click", () => { box.hidden = true; });
    clearTimeout(noticeTimer);
    if (tone !== "error") noticeTimer = setTimeout(() => { box.hidden = true; }, 8000);
  }

  function failed(err) {
    notify(err instanceof ApiError ? err.message : `Something went wrong: ${err}`, "error");
  }

  /** The page's confirmation dialog (window.confirm is blocked in the Airflow UI's sandboxed iframe). */
  function confirmAction({ title, text, ok = "Confirm", danger = true }) {
    const dialog = $("#confirm");
    $("[data-confirm=title]", dialog).textContent = title;
    $("[data-confirm=text]", dialog).textContent = text;
    const button = $("[data-confirm=ok]", dialog);
    button.textContent = ok;
    button.className = `btn ${danger ? "btn-danger" : "btn-primary"}`;
    dialog.returnValue = "";
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.showModal();
    });
  }

  function legacyCopy(text) {
    const area = h("textarea", { class: "offscreen", readonly: true });
    area.value = text;
    body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
    area.remove();
    return ok;
  }

  async function copy(text, button) {
    let ok;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch (err) {
      ok = legacyCopy(text); // the clipboard API is not granted to the Airflow UI's iframe
    }
    const label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    button.textContent = ok ? "Copied" : "Copy failed: select the text";
    setTimeout(() => { button.textContent = label; }, 2500);
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const target = $(button.dataset.copy);
    if (!target) return;
    const items = $$("li", target);
    copy(items.length ? items.map((li) => li.textContent).join("\n") : target.textContent, button);
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-close-dialog]");
    if (button) button.closest("dialog").close("cancel");
  });

  /** Clone the server-rendered action template, keeping the buttons whose data-when matches. */
  function actions(templateId, states) {
    const template = document.getElementById(templateId);
    if (!template) return null;
    const fragment = template.content.cloneNode(true);
    for (const button of $$("[data-when]", fragment)) {
      if (!states.includes(button.dataset.when)) button.remove();
    }
    return fragment;
  }

  function placeholder(table, text, columns) {
    $("tbody", table).replaceChildren(h("tr", { class: "placeholder" }, h("td", { colspan: columns, text })));
  }

  function query(params) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== "" && value !== null && value !== undefined) search.set(key, value);
    }
    const text = search.toString();
    return text ? `?${text}` : "";
  }

  function formValues(form) {
    const values = {};
    for (const [key, value] of new FormData(form).entries()) values[key] = String(value).trim();
    return values;
  }

  /** Wraps a loader so that only the answer to the latest call is rendered (filters applied in a row). */
  function latest(loader) {
    let calls = 0;
    return async (...args) => {
      const call = ++calls;
      const data = await loader(...args);
      return call === calls ? data : null;
    };
  }

  function busy(button, promise) {
    if (button) button.disabled = true;
    return promise.finally(() => { if (button) button.disabled = false; });
  }

  // --- webhook endpoints ---------------------------------------------------------------------------------

  function initEndpoints() {
    const table = $("#endpoints");
    const columns = $$("thead th", table).length;
    const createCard = $("#create");
    const form = $("#create-form");
    const secretPanel = $("#secret-panel");
    let rows = new Map();

    function showSecret(endpoint, title) {
      $("[data-secret=title]", secretPanel).textContent = title;
      $("[data-secret=url]", secretPanel).textContent = new URL(endpoint.delivery_path, window.location.origin).href;
      $("[data-secret=value]", secretPanel).textContent = endpoint.secret;
      const overlap = endpoint.previous_secret_expires_at;
      $("[data-secret=overlap-label]", secretPanel).hidden = !overlap;
      const overlapBox = $("[data-secret=overlap]", secretPanel);
      overlapBox.hidden = !overlap;
      overlapBox.replaceChildren(overlap ? h("span", {}, "keeps working until ", when(overlap)) : "");
      secretPanel.hidden = false;
      secretPanel.scrollIntoView({ block: "nearest" });
    }

    $("[data-action=hide-secret]").addEventListener("click", () => {
      $("[data-secret=value]", secretPanel).textContent = ""; // gone from the page once stored
      secretPanel.hidden = true;
    });

    function render(endpoints) {
      rows = new Map(endpoints.map((e) => [e.id, e]));
      if (!endpoints.length) {
        placeholder(table, "No webhook endpoints yet.", columns);
        return;
      }
      $("tbody", table).replaceChildren(...endpoints.map((e) => {
        const routes = Object.keys(e.routes || {}).length;
        const status = [badge(e.enabled ? "Enabled" : "Disabled", e.enabled ? "success" : "neutral")];
        if (e.previous_secret_expires_at && new Date(e.previous_secret_expires_at) > new Date()) {
          status.push(h("div", { class: "muted small" }, "old secret until ", when(e.previous_secret_expires_at)));
        }
        const cells = [
          h("td", {}, h("strong", { text: e.name }), h("div", { class: "muted small mono", text: e.id })),
          h("td", { text: e.organization_id }),
          h("td", { text: e.adapter }),
          h("td", {}, h("span", { class: "mono", text: e.target_dag_id }),
            routes ? h("div", { class: "muted small", text: `+ ${routes} route${routes > 1 ? "s" : ""}` }) : null),
          h("td", {}, h("code", { class: "small", text: e.delivery_path })),
          h("td", {}, status),
          h("td", {}, when(e.created_at)),
        ];
        const buttons = actions("endpoint-actions", [e.enabled ? "enabled" : "disabled"]);
        if (buttons) cells.push(h("td", { class: "right nowrap" }, buttons));
        return h("tr", { dataset: { id: e.id } }, cells);
      }));
    }

    const fetchEndpoints = latest(() => api("GET", "/webhook-endpoints"));
    async function load() {
      try {
        const data = await fetchEndpoints();
        if (data) render(data.endpoints);
      } catch (err) {
        placeholder(table, "Could not load the endpoints.", columns);
        failed(err);
      }
    }

    const path = (id) => `/webhook-endpoints/${encodeURIComponent(id)}`;
    const ROW_ACTIONS = {
      async rotate(e, button) {
        const ok = await confirmAction({
          title: `Rotate the secret of “${e.name}”?`,
          text: "OfficeFlow issues a new secret. The current one keeps verifying deliveries for the overlap period "
            + "(a day by default), time to enter the new one in the HR system.",
          ok: "Rotate secret",
        });
        if (!ok) return;
        const rotated = await busy(button, api("POST", `${path(e.id)}/rotate-secret`, {}));
        showSecret(rotated, `New secret for “${e.name}”`);
      },
      async disable(e, button) {
        const ok = await confirmAction({
          title: `Disable “${e.name}”?`,
          text: "Deliveries to it will be refused (answered like an unknown endpoint) until it is enabled again.",
          ok: "Disable",
        });
        if (!ok) return;
        await busy(button, api("POST", `${path(e.id)}/disable`, {}));
        return `“${e.name}” is disabled.`;
      },
      async enable(e, button) {
        await busy(button, api("PATCH", path(e.id), { enabled: true }));
        return `“${e.name}” is enabled.`;
      },
      async delete(e, button) {
        const ok = await confirmAction({
          title: `Delete “${e.name}”?`,
          text: "Its delivery URL stops working for good and its settings are removed. Its events stay in the inbox.",
          ok: "Delete",
        });
        if (!ok) return;
        await busy(button, api("DELETE", path(e.id)));
        return `“${e.name}” was deleted.`;
      },
    };

    table.addEventListener("click", async (event) => {
      const button = event.target.closest("[data-row-action]");
      if (!button) return;
      const endpoint = rows.get(button.closest("tr").dataset.id);
      await actThenReload(() => ROW_ACTIONS[button.dataset.rowAction](endpoint, button), load);
    });

    if (createCard && form) {
      const adapterFields = () => {
        const adapter = form.elements.adapter.value;
        for (const field of $$("[data-adapter]", form)) {
          field.hidden = field.dataset.adapter !== adapter;
          $("input", field).required = adapter === "workday" && field.dataset.adapter === "workday";
        }
      };
      form.elements.adapter.addEventListener("change", adapterFields);
      adapterFields();
      $("[data-action=show-create]").addEventListener("click", () => {
        createCard.hidden = false;
        form.elements.name.focus();
      });
      $("[data-action=hide-create]").addEventListener("click", () => { createCard.hidden = true; });

      const json = (text, label) => {
        if (!text) return undefined;
        try {
          return JSON.parse(text);
        } catch (err) {
          throw new ApiError(0, `${label} is not valid JSON: ${err.message}`, "invalid_json");
        }
      };

      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const v = formValues(form);
        try {
          const payload = {
            name: v.name, organization_id: v.organization_id, adapter: v.adapter, target_dag_id: v.target_dag_id,
            event_types: v.event_types ? v.event_types.split(",").map((s) => s.trim()).filter(Boolean) : [],
            rate_limit_per_minute: Number(v.rate_limit_per_minute || 600),
          };
          const routes = json(v.routes, "Routes");
          const mapping = json(v.mapping, "Mapping");
          if (routes) payload.routes = routes;
          if (mapping) payload.mapping = mapping;
          if (v.adapter === "workday") payload.verification = { username: v.workday_username };
          if (v.adapter === "bamboohr" && v.secret) payload.secret = v.secret;
          const created = await busy($("[type=submit]", form), api("POST", "/webhook-endpoints", payload));
          form.reset();
          adapterFields();
          createCard.hidden = true;
          showSecret(created, `Endpoint “${created.name}” created`);
          await load();
        } catch (err) {
          failed(err);
        }
      });
    }

    load();
  }

  // --- webhook events ------------------------------------------------------------------------------------

  function initEvents() {
    const table = $("#events");
    const columns = $$("thead th", table).length;
    const filters = $("#filters");
    const dialog = $("#event");
    const replayable = filters.dataset.replayable.split(" ");
    const limit = 50;
    const endpointNames = new Map([["bamboohr", "bamboohr (built-in)"]]);
    const params = new URLSearchParams(window.location.search);
    let offset = 0;
    let current = null;

    for (const name of ["endpoint", "status"]) {
      if (params.get(name)) filters.elements[name].value = params.get(name);
    }

    async function loadEndpoints() {
      const select = $("[data-endpoint-options]", filters);
      if (!select) return;
      try {
        const data = await api("GET", "/webhook-endpoints");
        for (const e of data.endpoints) {
          endpointNames.set(e.id, e.name);
          select.append(h("option", { value: e.id, text: `${e.name} (${e.organization_id})` }));
        }
        if (params.get("endpoint")) select.value = params.get("endpoint");
      } catch (err) {
        /* the filter still works with the built-in endpoint and "all" */
      }
    }

    function render(data) {
      const { events, total_entries: total } = data;
      const summary = $("[data-pager=summary]");
      summary.textContent = total ? `${offset + 1}–${offset + events.length} of ${total}` : "";
      $("[data-pager=prev]").disabled = offset === 0;
      $("[data-pager=next]").disabled = offset + events.length >= total;
      if (!events.length) {
        placeholder(table, "No events match these filters.", columns);
        return;
      }
      $("tbody", table).replaceChildren(...events.map((e) => {
        const run = e.dag_id
          ? h("td", {}, h("span", { class: "mono", text: e.dag_id }),
            e.dag_run_id ? h("div", { class: "muted small mono", text: e.dag_run_id }) : null)
          : h("td", {}, h("span", { class: "muted", text: "—" }));
        const cellActions = h("td", { class: "right nowrap" },
          h("button", { type: "button", class: "btn btn-small", dataset: { rowAction: "inspect" }, text: "Inspect" }));
        if (replayable.includes(e.status)) {
          const replay = actions("replay-action", []);
          if (replay) cellActions.append(replay);
        }
        return h("tr", { dataset: { id: e.id } },
          h("td", {}, when(e.received_at)),
          h("td", {}, h("span", { class: "mono", text: e.event_type }),
            h("div", { class: "muted small mono", text: e.provider_event_id })),
          h("td", { text: endpointNames.get(e.endpoint_id) || e.endpoint_id }),
          h("td", {}, badge(e.status, STATE_TONES[e.status]),
            e.error ? h("div", { class: "muted small clip", title: e.error, text: e.error }) : null),
          run,
          h("td", { text: String(e.attempts) }),
          cellActions);
      }));
    }

    const fetchEvents = latest((path) => api("GET", path));
    async function load() {
      const v = formValues(filters);
      try {
        const data = await fetchEvents(`/events${query({ endpoint: v.endpoint, status: v.status, limit, offset })}`);
        if (data) render(data);
      } catch (err) {
        placeholder(table, "Could not load the events.", columns);
        failed(err);
      }
    }

    function pretty(value) {
      return value === null || value === undefined ? "—" : JSON.stringify(value, null, 2);
    }

    async function inspect(id) {
      const e = await api("GET", `/events/${encodeURIComponent(id)}`);
      current = e;
      $("#event-title").textContent = `${e.event_type} · ${e.status}`;
      const fields = [
        ["Event id", e.id], ["Sender's event id", e.provider_event_id], ["Endpoint", e.endpoint_id],
        ["Organization", e.organization_id || "—"], ["Status", e.status], ["Workflow", e.dag_id || "—"],
        ["Run id", e.dag_run_id || "—"], ["Attempts", String(e.attempts)], ["Correlation id", e.correlation_id],
      ];
      const list = $("[data-event=fields]", dialog);
      list.replaceChildren(...fields.flatMap(([k, val]) => [h("dt", { text: k }), h("dd", { class: "mono", text: val })]),
        h("dt", { text: "Received" }), h("dd", {}, when(e.received_at)),
        h("dt", { text: "Updated" }), h("dd", {}, when(e.updated_at)));
      $("[data-event=error-box]", dialog).hidden = !e.error;
      $("[data-event=error]", dialog).textContent = e.error || "";
      $("[data-event=conf]", dialog).textContent = pretty(e.conf);
      $("[data-event=document]", dialog).textContent = pretty(e.document);
      $("[data-event=keys]", dialog).textContent = (e.payload_keys || []).join("\n") || "—";
      const replayBox = $("[data-event=replay-box]", dialog);
      if (replayBox) replayBox.hidden = !replayable.includes(e.status);
      if (!dialog.open) dialog.showModal();
    }

    async function replay(id, button) {
      const ok = await confirmAction({
        title: "Replay this event?",
        text: "OfficeFlow maps it again with its endpoint's current settings and queues it to start its workflow.",
        ok: "Replay", danger: false,
      });
      if (!ok) return;
      const e = await busy(button, api("POST", `/events/${encodeURIComponent(id)}/replay`, {}));
      if (dialog.open) dialog.close();
      await load();
      notify(`Event ${e.provider_event_id} queued again for ${e.dag_id}.`);
    }

    table.addEventListener("click", async (event) => {
      const button = event.target.closest("[data-row-action]");
      if (!button) return;
      const id = button.closest("tr").dataset.id;
      try {
        if (button.dataset.rowAction === "inspect") await busy(button, inspect(id));
        else await replay(id, button);
      } catch (err) {
        failed(err);
      }
    });
    const replayButton = $("[data-action=replay]", dialog);
    if (replayButton) {
      replayButton.addEventListener("click", () => replay(current.id, replayButton).catch(failed));
    }

    filters.addEventListener("submit", (event) => {
      event.preventDefault();
      offset = 0;
      const v = formValues(filters);
      history.replaceState(null, "", `${window.location.pathname}${query({ endpoint: v.endpoint, status: v.status })}`);
      load();
    });
    filters.addEventListener("reset", () => {
      setTimeout(() => filters.requestSubmit(), 0);
    });
    $("[data-pager=prev]").addEventListener("click", () => { offset = Math.max(0, offset - limit); load(); });
    $("[data-pager=next]").addEventListener("click", () => { offset += limit; load(); });

    loadEndpoints().then(load);
  }

  // --- audit log -----------------------------------------------------------------------------------------

  function initAudit() {
    const table = $("#audit");
    const columns = $$("thead th", table).length;
    const filters = $("#filters");
    const csv = $("#csv");
    const more = $("[data-pager=more]");
    const knownActions = new Set();
    let shown = 0;
    let beforeId = null;

    function criteria() {
      const v = formValues(filters);
      const day = (value, shift) => {
        if (!value) return "";
        const d = new Date(`${value}T00:00:00Z`);
        d.setUTCDate(d.getUTCDate() + shift);
        return d.toISOString();
      };
      return { actor: v.actor, action: v.action, outcome: v.outcome, since: day(v.since, 0), until: day(v.until, 1) };
    }

    function row(e) {
      const details = Object.keys(e.details || {}).length ? JSON.stringify(e.details) : "";
      return h("tr", {},
        h("td", { class: "nowrap" }, when(e.at)),
        h("td", { class: "mono", text: e.actor }),
        h("td", { class: "mono", text: e.action }),
        h("td", {}, h("span", { text: e.resource_type }),
          e.resource_id ? h("div", { class: "muted small mono", text: e.resource_id }) : null),
        h("td", {}, badge(e.outcome, STATE_TONES[e.outcome] || "neutral")),
        h("td", { text: e.organization_id || "—" }),
        h("td", { class: "mono", text: e.source_ip || "—" }),
        h("td", { class: "small mono clip", title: details, text: details }));
    }

    const fetchEntries = latest((path) => api("GET", path));
    async function load(append) {
      const c = criteria();
      csv.href = `${csv.dataset.base}${query(c)}`;
      try {
        const data = await fetchEntries(`/audit-log${query({ ...c, limit: 100, before_id: append ? beforeId : "" })}`);
        if (!data) return;
        const tbody = $("tbody", table);
        if (!append) {
          tbody.replaceChildren();
          shown = 0;
        }
        tbody.append(...data.entries.map(row));
        shown += data.entries.length;
        if (!shown) placeholder(table, "No audit entries match these filters.", columns);
        beforeId = data.next_before_id;
        more.hidden = beforeId === null;
        $("[data-pager=summary]").textContent = shown ? `${shown} entr${shown === 1 ? "y" : "ies"}, newest first` : "";
        for (const e of data.entries) {
          if (!knownActions.has(e.action)) {
            knownActions.add(e.action);
            $("#known-actions").append(h("option", { value: e.action }));
          }
        }
      } catch (err) {
        if (!append) placeholder(table, "Could not load the audit log.", columns);
        failed(err);
      }
    }

    filters.addEventListener("submit", (event) => {
      event.preventDefault();
      load(false);
    });
    filters.addEventListener("reset", () => setTimeout(() => filters.requestSubmit(), 0));
    more.addEventListener("click", () => busy(more, load(true)));
    load(false);
  }

  // --- access --------------------------------------------------------------------------------------------

  function initAccess() {
    const table = $("#users");
    const columns = $$("thead th", table).length;
    const orgDialog = $("#organizations");
    let users = new Map();

    function render(data) {
      users = new Map(data.users.map((u) => [u.username, u]));
      if (!data.users.length) {
        placeholder(table, "No users in your organizations.", columns);
        return;
      }
      $("tbody", table).replaceChildren(...data.users.map((u) => {
        const other = u.roles.filter((r) => !u.officeflow_roles.includes(r));
        const orgs = u.all_organizations
          ? [badge("All organizations", "info")]
          : u.organizations.length ? u.organizations.map((o) => badge(o, "neutral")) : [h("span", { class: "muted", text: "none" })];
        const cells = [
          h("td", {}, h("strong", { text: u.username }), u.active ? null : badge("inactive", "warning"),
            u.email ? h("div", { class: "muted small", text: u.email }) : null),
          h("td", {}, u.officeflow_roles.length ? u.officeflow_roles.map((r) => badge(r, "brand"))
            : h("span", { class: "muted", text: "—" })),
          h("td", { text: other.join(", ") || "—" }),
          h("td", {}, orgs),
          h("td", {}, badge(u.mfa_enrolled ? "On" : "Off", u.mfa_enrolled ? "success" : "neutral")),
          h("td", {}, when(u.last_login)),
        ];
        const buttons = actions("user-actions", u.mfa_enrolled ? ["mfa"] : []);
        if (buttons) cells.push(h("td", { class: "right nowrap" }, buttons));
        return h("tr", { dataset: { user: u.username } }, cells);
      }));
    }

    const fetchUsers = latest(() => api("GET", "/access/users"));
    async function load() {
      try {
        const data = await fetchUsers();
        if (data) render(data);
      } catch (err) {
        placeholder(table, "Could not load the users.", columns);
        failed(err);
      }
    }

    const path = (u) => `/access/users/${encodeURIComponent(u.username)}`;
    const ROW_ACTIONS = {
      async organizations(u) {
        $("[data-org=user]", orgDialog).textContent = u.username;
        const input = $("[data-org=input]", orgDialog);
        input.value = u.organizations.join(", ");
        orgDialog.returnValue = "";
        const saved = await new Promise((resolve) => {
          orgDialog.addEventListener("close", () => resolve(orgDialog.returnValue === "ok"), { once: true });
          orgDialog.showModal();
        });
        if (!saved) return;
        const organizations = input.value.split(",").map((s) => s.trim()).filter(Boolean);
        await api("PUT", `${path(u)}/organizations`, { organizations });
        return `Organizations of ${u.username}: ${organizations.join(", ") || "none"}.`;
      },
      async "reset-mfa"(u, button) {
        const ok = await confirmAction({
          title: `Reset two-factor sign-in of ${u.username}?`,
          text: "Their authenticator app and recovery codes stop working. They sign in with their password and "
            + "set up two-factor sign-in again.",
          ok: "Reset two-factor",
        });
        if (!ok) return;
        await busy(button, api("DELETE", `${path(u)}/mfa`));
        return `Two-factor sign-in of ${u.username} was reset.`;
      },
      async unlock(u, button) {
        const result = await busy(button, api("POST", `${path(u)}/unlock`, {}));
        const n = result.failed_attempts_removed;
        return `${u.username} can sign in again (${n} failed attempt${n === 1 ? "" : "s"} forgotten).`;
      },
    };

    table.addEventListener("click", async (event) => {
      const button = event.target.closest("[data-row-action]");
      if (!button) return;
      await actThenReload(() => ROW_ACTIONS[button.dataset.rowAction](users.get(button.closest("tr").dataset.user), button),
        load);
    });
    load();
  }

  // --- two-factor sign-in --------------------------------------------------------------------------------

  function initMfa() {
    const status = $("#status");
    const setup = $("#setup");
    const recovery = $("#recovery");
    const form = $("#verify-form");

    function svgDataUrl(svg) {
      // Shown as an <img>: an image can't run script, whatever the SVG holds.
      const withNs = /\sxmlns=/.test(svg) ? svg : svg.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"');
      return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(withNs)}`;
    }

    async function begin(button) {
      try {
        const enrolment = await busy(button, api("POST", "/auth/mfa/setup", {}));
        $("#qr").src = svgDataUrl(enrolment.qr_svg);
        $("#mfa-secret").textContent = enrolment.secret;
        setup.hidden = false;
        $("[data-setup-start]", status).hidden = true; // a second click would only start over
        form.elements.code.focus();
      } catch (err) {
        failed(err);
      }
    }

    function showStatus(me) {
      const mfa = me.mfa;
      const parts = [];
      if (mfa.enrolled) {
        parts.push(h("h2", {}, badge("On", "success"), " Two-factor sign-in is on"),
          h("p", {}, "After your password, signing in asks for a one-time code from your authenticator app. "
            + `You have ${mfa.recovery_codes_left} unused recovery code${mfa.recovery_codes_left === 1 ? "" : "s"}.`),
          h("p", { class: "muted", text: "Lost your phone? Sign in with a recovery code, or ask an OfficeFlow "
            + "administrator to reset your two-factor sign-in (Access page); then set it up again here." }));
      } else {
        parts.push(h("h2", {}, badge("Off", "neutral"), " Two-factor sign-in is off"),
          h("p", { text: mfa.required
            ? "Your role requires two-factor sign-in: set it up now to keep using OfficeFlow."
            : "Add a one-time code from your phone to your password, so a stolen password alone can't sign in." }));
        const start = h("button", { type: "button", class: "btn btn-primary", text: "Set up two-factor sign-in" });
        start.addEventListener("click", () => begin(start));
        parts.push(h("div", { class: "actions start", dataset: { setupStart: "" } }, start));
      }
      status.replaceChildren(...parts);
    }

    async function refresh() {
      try {
        showStatus(await api("GET", "/auth/me"));
      } catch (err) {
        failed(err);
      }
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const result = await busy($("[type=submit]", form),
          api("POST", "/auth/mfa/verify", { code: form.elements.code.value.trim() }));
        $("#recovery-codes").replaceChildren(...result.recovery_codes.map((code) => h("li", { class: "mono", text: code })));
        setup.hidden = true;
        $("#mfa-secret").textContent = "";
        $("#qr").removeAttribute("src");
        form.reset();
        recovery.hidden = false;
        await refresh();
      } catch (err) {
        failed(err);
        form.elements.code.select();
      }
    });
    $("[data-action=done-recovery]").addEventListener("click", () => {
      $("#recovery-codes").replaceChildren(); // shown once: gone from the page
      recovery.hidden = true;
    });
    refresh();
  }

  const PAGES = { endpoints: initEndpoints, events: initEvents, audit: initAudit, access: initAccess, mfa: initMfa };
  const init = PAGES[body.dataset.page];
  if (init && !$("[data-testid=forbidden], [data-testid=enrol-first]")) init();
})();
