// Live job panels: draw the embedded state at once, then follow the job's websocket.
// Events carry database ids; anything already drawn is skipped, so snapshots and updates may overlap.
(function () {
  "use strict";
  const METRIC_LABELS = { step: "Step", epoch: "Epoch", loss: "Loss", learning_rate: "LR", tokens_per_s: "Tokens/s", eta_s: "ETA" };
  const FINAL = ["succeeded", "failed", "cancelled"];
  // Metrics that describe a run in progress: an ended job no longer shows them.
  const WHILE_RUNNING = ["eta_s"];

  function formatValue(name, value) {
    if (value === null || value === undefined) return "–";
    if (name === "eta_s") return value >= 60 ? Math.floor(value / 60) + "m " + Math.round(value % 60) + "s" : Math.round(value) + "s";
    if (name === "learning_rate") return Number(value).toExponential(1);
    if (name === "loss") return Number(value).toFixed(4);
    if (name === "tokens_per_s") return Math.round(value).toLocaleString();
    return String(value);
  }

  class JobPanel {
    constructor(root) {
      this.root = root;
      this.el = (role) => root.querySelector('[data-role="' + role + '"]');
      this.lastId = 0;
      this.latest = {};
      this.points = [];
      this.chart = null;
      this.retryDelay = 500;
      const state = JSON.parse(document.getElementById("job-state-" + root.dataset.job).textContent);
      this.applyJob(state.job);
      state.events.forEach((event) => this.applyEvent(event));
      this.connect();
    }

    connect() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const ws = new WebSocket(scheme + location.host + this.root.dataset.ws + "?after=" + this.lastId);
      this.ws = ws;
      ws.onopen = () => { this.retryDelay = 500; this.root.dataset.connected = "1"; };
      ws.onmessage = (message) => {
        const data = JSON.parse(message.data);
        if (data.type === "snapshot") { data.events.forEach((event) => this.applyEvent(event)); this.applyJob(data.job); }
        if (data.type === "update") { if (data.event) this.applyEvent(data.event); this.applyJob(data.job); }
      };
      ws.onclose = (close) => {
        this.root.dataset.connected = "0";
        if (close.code === 4404 || this.final) return;
        setTimeout(() => this.connect(), this.retryDelay);
        this.retryDelay = Math.min(this.retryDelay * 2, 10000);
      };
    }

    applyJob(job) {
      const status = this.el("status");
      status.textContent = job.status_display;
      status.className = "badge " + job.status;
      this.root.dataset.status = job.status;
      // Phase, message and place in line come derived from the status (apps.core.selectors.job_snapshot): none stays
      // once the job ends.
      this.el("phase").textContent = job.phase || "";
      const waiting = this.el("waiting");
      waiting.textContent = job.waiting ? job.waiting.text : "";
      waiting.hidden = !job.waiting;
      this.root.dataset.ahead = job.waiting && job.waiting.ahead !== null ? job.waiting.ahead : "";
      const percent = Math.round((job.progress || 0) * 100);
      this.el("bar").firstElementChild.style.width = percent + "%";
      this.el("bar").setAttribute("aria-valuenow", percent);
      this.el("percent").textContent = percent + "%";
      this.el("message").textContent = job.message || "";
      const error = this.el("error");
      error.textContent = job.error_message || "";
      error.hidden = !job.error_message;
      this.final = FINAL.includes(job.status);
      const cancel = this.el("cancel-form");
      if (cancel && (this.final || job.cancel_requested)) cancel.remove();
      if (this.final) WHILE_RUNNING.forEach((name) => { const span = this.metricSpan(name); if (span) span.remove(); });
      const reloadWhen = this.root.dataset.reloadOnFinish;
      if (this.final && !this.reloadScheduled && reloadWhen !== undefined && (reloadWhen === "" || reloadWhen === job.status)) {
        // Pages showing the job's results re-render them from the database once it has ended
        // (data-reload-on-finish="succeeded": only when it produced some).
        this.reloadScheduled = true;
        setTimeout(() => location.reload(), 400);
      }
      showForJob(job);
      document.dispatchEvent(new CustomEvent("job:update", { detail: job }));
    }

    applyEvent(event) {
      if (event.id <= this.lastId) return;
      this.lastId = event.id;
      if (event.type === "log") this.appendLog(event.data.line, event.at);
      else if (event.type === "status" && event.data.message) this.appendLog(event.data.message, event.at);
      else if (event.type === "progress" && event.data.phase) this.appendLog("→ " + event.data.phase + (event.data.message ? ": " + event.data.message : ""), event.at);
      else if (event.type === "metric") this.applyMetric(event.data);
    }

    appendLog(line, at) {
      const log = this.el("log");
      const time = at ? new Date(at).toLocaleTimeString() + "  " : "";
      log.textContent += time + line + "\n";
      log.scrollTop = log.scrollHeight;
    }

    metricSpan(name) { return this.el("stats").querySelector('[data-metric="' + name + '"]'); }

    applyMetric(values) {
      Object.assign(this.latest, values);
      const stats = this.el("stats");
      Object.keys(METRIC_LABELS).forEach((name) => {
        if (this.latest[name] === undefined || (this.final && WHILE_RUNNING.includes(name))) return;
        let span = this.metricSpan(name);
        if (!span) {
          span = document.createElement("span");
          span.dataset.metric = name;
          stats.appendChild(span);
        }
        span.innerHTML = METRIC_LABELS[name] + " <b></b>";
        span.querySelector("b").textContent = formatValue(name, this.latest[name]);
      });
      if (values.loss !== undefined && values.step !== undefined) {
        this.points.push({ x: values.step, y: values.loss });
        this.drawChart();
      }
    }

    drawChart() {
      const canvas = this.el("chart");
      if (typeof Chart === "undefined") return;
      canvas.hidden = false;
      if (!this.chart) {
        this.chart = new Chart(canvas, {
          type: "line",
          data: { datasets: [{ label: "Training loss", data: this.points, borderColor: "#2f6fed", pointRadius: 0, borderWidth: 2, tension: 0.2 }] },
          options: { animation: false, parsing: false, responsive: true,
                     scales: { x: { type: "linear", title: { display: true, text: "step" } }, y: { title: { display: true, text: "loss" } } } },
        });
      } else if (!this.pending) {
        // Many metrics can arrive in one burst; redraw once per animation frame.
        this.pending = true;
        requestAnimationFrame(() => { this.pending = false; this.chart.update("none"); });
      }
    }
  }

  // Parts of a page that depend on one job's state (a note that it runs, the buttons it hides) carry
  // data-show-for="<job code>" and data-show-when="queued running" or "final" (the server renders them right with
  // apps/core/templatetags/live.py's show_when): they change as that job's panel draws new states, without a reload.
  function showForJob(job) {
    document.querySelectorAll('[data-show-for="' + job.code + '"][data-show-when]').forEach((element) => {
      const wanted = element.dataset.showWhen.split(/\s+/);
      element.hidden = !(wanted.includes(job.status) || (wanted.includes("final") && FINAL.includes(job.status)));
    });
  }

  function start() { document.querySelectorAll("section.job[data-job]").forEach((root) => new JobPanel(root)); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
